"""Leak decisions, baseline comparison (and its confirming run) and charts, on synthetic series."""

from types import SimpleNamespace

import pytest
from robot.api.exceptions import Failure
from XNAi.keywords import metrics, performance
from xnai_qa import baselines, charts, leaks


def base(**kw):
    figures = {"fds": 20, "sockets": 4, "uss_mb": 50.0}
    figures.update(kw)
    return figures


def test_flat_rounds_are_not_a_leak():
    rounds = [base(uss_mb=50.0 + d) for d in (0.01, -0.02, 0.0, 0.01, -0.01)]
    assert leaks.judge(base(), rounds) == []


def test_one_extra_fd_after_the_last_round_is_a_leak():
    rounds = [base(), base(fds=21), base(fds=21)]
    reasons = leaks.judge(base(), rounds)
    assert reasons and "fds: 21 after the last of 3 rounds, baseline 20" in reasons[0]
    assert "after each round: 20, 21, 21" in reasons[0]


def test_an_fd_closed_late_but_back_by_the_end_is_noted_not_a_leak():
    rounds = [base(fds=21, sockets=5), base(), base()]
    assert leaks.judge(base(), rounds) == []
    assert leaks.late_closes(base(), rounds) == [
        "fds closed late (baseline 20; round 1: 21), back by the end",
        "sockets closed late (baseline 4; round 1: 5), back by the end"]


def test_memory_growing_every_round_is_a_leak():
    rounds = [base(uss_mb=50.0 + 0.1 * i) for i in range(1, 6)]
    reasons = leaks.judge(base(), rounds)
    assert any("grew in every one of 5 rounds" in r for r in reasons)


def test_tiny_monotone_growth_below_the_floor_is_noise():
    rounds = [base(uss_mb=50.0 + 0.001 * i) for i in range(1, 6)]
    assert leaks.judge(base(), rounds, min_growth_kb=64) == []


def test_steep_slope_with_one_flat_round_is_still_a_leak():
    series = [51.0, 52.0, 52.0, 53.0, 54.0]
    reasons = leaks.judge(base(), [base(uss_mb=v) for v in series], max_slope_kb=512)
    assert any("slope" in r for r in reasons)


def test_one_time_jump_then_flat_is_not_a_leak():
    series = [52.0, 52.0, 52.0, 52.0, 52.0]
    assert leaks.judge(base(), [base(uss_mb=v) for v in series]) == []


def test_slope_of_a_line():
    assert leaks.slope([1, 2, 3, 4]) == 1.0
    assert leaks.slope([5]) == 0.0


def test_baseline_comparison_uses_the_seed_tolerances():
    reference = {"p50_ms": 10.0, "p99_ms": 40.0, "memory_mb": 100.0, "error_rate": 0.0}
    same = baselines.compare({"p50_ms": 10.9, "p99_ms": 47.0, "memory_mb": 104.0, "error_rate": 0.0}, reference)
    assert all(r["ok"] for r in same)
    moved = baselines.compare({"p50_ms": 13.0, "p99_ms": 49.0, "memory_mb": 106.0, "error_rate": 0.002}, reference)
    bad = {r["figure"] for r in moved if not r["ok"]}
    assert bad == {"p50_ms", "p99_ms", "memory_mb", "error_rate"}


def test_a_30_percent_slower_path_is_flagged():
    rows = baselines.compare({"p50_ms": 13.0, "p99_ms": 52.0}, {"p50_ms": 10.0, "p99_ms": 40.0})
    assert [r["figure"] for r in rows if not r["ok"]] == ["p50_ms", "p99_ms"]


def test_combine_averages_runs(tmp_path):
    combined = baselines.combine([{"p50_ms": 10.0}, {"p50_ms": 12.0}, {"p50_ms": 14.0}])
    assert combined == {"p50_ms": 12.0}
    baselines.save("x", combined, tmp_path)
    assert baselines.load("x", tmp_path) == combined


def test_chart_is_an_inline_svg_with_its_series():
    svg = charts.line_chart({"p99": [(0, 1.0), (1, None), (2, 3.0)], "p50": [(0, 0.5), (1, 0.7)]}, "t", "s", "ms")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert ">p99<" in svg and ">p50<" in svg
    assert charts.line_chart({}, "empty", "x", "y").count("no data") == 1


class _Baseline:
    """Profile Should Match Baseline on a saved baseline (p99 138 ms), its runs given as p99 figures."""

    def __init__(self, tmp_path, monkeypatch, p99s):
        self.metadata: dict = {}
        monkeypatch.setattr(performance, "BuiltIn", lambda: SimpleNamespace(
            set_suite_metadata=lambda name, value, top: self.metadata.update({name: (value, top)})))
        settings = {"BASELINE_DIR": str(tmp_path), "OUTPUT DIR": str(tmp_path), "PROFILE_COOLDOWN": "1s"}
        ctx = SimpleNamespace(var=lambda name, default=None: settings.get(name, default))
        ctx.metrics = metrics.MetricKeywords(ctx)
        baselines.save("baseline", {"p50_ms": 130.0, "p99_ms": 138.0, "memory_mb": 68.0, "error_rate": 0.0},
                       str(tmp_path))
        self.keywords = performance.PerformanceKeywords(ctx)
        self.runs = [self.result(p99) for p99 in p99s]
        self.reruns = 0

        def rerun(profile, duration=None, record=True):
            assert (profile, duration, record) == ("baseline", "5s", False)
            self.reruns += 1
            return self.runs[self.reruns]

        monkeypatch.setattr(self.keywords, "run_load_profile", rerun)
        def idle(service, timeout):
            assert (service, timeout.total_seconds()) == ("rag_api", 1.0)
            return 0.0

        monkeypatch.setattr(self.keywords, "wait_until_target_is_idle", idle)

    @staticmethod
    def result(p99):
        return {"profile": "baseline", "duration_s": 5.0, "latency_ms": {"p50": 130.0, "p99": p99},
                "error_rate": 0.0, "throughput": 1.0, "memory_mb": 68.0}

    def judge(self, **kw):
        return self.keywords.profile_should_match_baseline(self.runs[0], **kw)


def test_a_baseline_move_that_a_fresh_run_does_not_repeat_is_no_regression(tmp_path, monkeypatch):
    """Measured in the container lane: five requests' p99 181 ms against 138 ms, one stalled request."""
    judged = _Baseline(tmp_path, monkeypatch, [181.0, 140.0])
    rows = judged.judge()
    assert judged.reruns == 1 and all(r["ok"] for r in rows)
    assert judged.metadata == {
        "Compared baseline": ("within tolerances of this run's baseline (after 1 unrepeated move)", True)}


def test_a_baseline_move_repeated_by_every_run_fails_naming_both(tmp_path, monkeypatch):
    judged = _Baseline(tmp_path, monkeypatch, [181.0, 180.0])
    with pytest.raises(Failure, match=r"p99_ms 138.0 -> 180.0 .*moved in all 2 runs; the first: p99_ms 138.0 -> 181.0"):
        judged.judge()
    assert judged.reruns == 1


def test_without_confirmation_one_move_fails_and_nothing_reruns(tmp_path, monkeypatch):
    judged = _Baseline(tmp_path, monkeypatch, [181.0])
    with pytest.raises(Failure, match=r"^Figures moved from baseline 'baseline': p99_ms 138.0 -> 181.0 \(\+31.2 %"):
        judged.judge(confirm=0)
    with pytest.raises(Failure, match=r"confirm=4: use 0\.\.3"):
        judged.judge(confirm=4)
    assert judged.reruns == 0
