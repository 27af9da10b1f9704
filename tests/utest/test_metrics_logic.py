"""Leak decisions, baseline comparison and charts, on synthetic series."""

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
