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


def test_median_interval_is_the_sign_test_interval_and_ignores_outliers():
    from xnai_qa.stats import median_interval

    assert median_interval(list(range(1, 17))) == (4, 13)  # n=16: the 4th and 13th values (97.9 %)
    assert median_interval([1, 2, 3]) == (1, 3)  # too few for 95 %: all of them
    quiet = [1.0 + 0.01 * i for i in range(30)]
    low, high = median_interval([*quiet, 50.0, -50.0])
    assert 1.0 <= low <= high <= 1.3
