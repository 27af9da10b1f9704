import pytest

from xnai_qa import stats


def test_nearest_rank_percentiles():
    samples = list(range(1, 101))  # 1..100
    assert stats.percentile(samples, 50) == 50
    assert stats.percentile(samples, 99) == 99
    assert stats.percentile(samples, 100) == 100


def test_single_slow_sample_shows_in_p99_of_small_series():
    samples = [1.0] * 29 + [600.0]
    assert stats.percentile(samples, 99) == 600.0
    assert stats.percentile(samples, 50) == 1.0


def test_empty_and_out_of_range_are_refused():
    with pytest.raises(ValueError, match="no samples"):
        stats.percentile([], 50)
    with pytest.raises(ValueError, match="percentile must be"):
        stats.percentile([1.0], 0)


def test_summary_counts_errors_and_rounds():
    summary = stats.summarize([1.23456, 2.0], errors=3)
    assert summary["count"] == 2
    assert summary["errors"] == 3
    assert summary["min"] == 1.235
    assert summary["max"] == 2.0
