"""Breaker state in either of the stack's two forms, and timelines."""

import json

import pytest
from xnai_qa import breakers


def test_key_pattern_accepts_name_or_service():
    assert breakers.key_for("circuit_breaker:{name}", "rag_api") == "circuit_breaker:rag_api"
    assert breakers.key_for("cb:{service}:state", "rag_api") == "cb:rag_api:state"


def test_json_form():
    raw = json.dumps({"state": "half_open", "failure_count": 0, "success_count": 1})
    assert breakers.parse(raw, "json") == {"state": "half_open", "failure_count": 0, "success_count": 1}
    assert breakers.parse(raw.encode(), "json")["state"] == "half_open"


@pytest.mark.parametrize("raw, state", [("OPEN", "open"), ("CLOSED", "closed"), ("HALF_OPEN", "half_open"),
                                        ("half-open\n", "half_open")])
def test_plain_form_of_the_seed(raw, state):
    assert breakers.parse(raw, "plain") == {"state": state}


def test_absent_key_is_no_state():
    assert breakers.parse(None, "json") == {"state": None}


@pytest.mark.parametrize("raw, fmt, message", [
    ("AJAR", "plain", "not one of OPEN"), ("{oops", "json", "not JSON"), ('{"x": 1}', "json", "no 'state'"),
    ('{"state": "melted"}', "json", "not one of closed"), ("OPEN", "xml", "use json or plain"),
])
def test_bad_values_are_named(raw, fmt, message):
    with pytest.raises(ValueError, match=message):
        breakers.parse(raw, fmt)


def test_transitions_and_time_in_state():
    timeline = [(0.0, "closed"), (1.0, "closed"), (1.5, "open"), (3.5, "half_open"), (4.0, "closed")]
    assert breakers.transitions(timeline) == [
        {"at": 1.5, "from": "closed", "to": "open"}, {"at": 3.5, "from": "open", "to": "half_open"},
        {"at": 4.0, "from": "half_open", "to": "closed"}]
    assert breakers.time_in_states(timeline, end=5.0) == {"closed": 2.5, "open": 2.0, "half_open": 0.5}


def test_ttl_problems_are_named():
    from xnai_qa.redisconn import ttl_problem

    assert ttl_problem(5, "k", 10) is None
    assert "does not exist" in ttl_problem(-2, "k", 10)
    assert "no expiry" in ttl_problem(-1, "k", 10)
    assert "more than 10" in ttl_problem(11, "k", 10)


def test_overhead_summary_pairs_rounds_and_reports_resolution():
    pairs = [([10.5, 10.6, 10.4], [10.0, 10.1, 9.9]) for _ in range(10)]
    result = breakers.overhead_summary("rag_api", pairs)
    assert result["overhead_ms"] == 0.5
    assert result["resolution_ms"] == 0.0
    assert result["samples_per_side"] == 30


def test_overhead_summary_noisy_rounds_widen_the_resolution():
    pairs = [([10.0 + (3 if i % 2 else 0)], [10.0]) for i in range(10)]
    result = breakers.overhead_summary("rag_api", pairs)
    assert result["resolution_ms"] > 1.0


def test_state_sequence_and_passes_through():
    seq = breakers.state_sequence(
        [(0, None), (1, "closed"), (2, "closed"), (3, "open"), (4, "half_open"), (5, "closed")]
    )
    assert seq == [None, "closed", "open", "half_open", "closed"]
    assert breakers.passes_through(seq, ["open", "half_open", "closed"])
    assert not breakers.passes_through(seq, ["half_open", "open"])


def test_an_overhead_measurement_decides_only_when_its_interval_clears_the_limit():
    from xnai_qa.breakers import overhead_decided

    def measured(low, high):
        return {"interval_ms": [low, high], "resolution_ms": (high - low) / 2}

    assert overhead_decided(measured(0.2, 1.0), 2.0)  # wholly below, resolved
    assert overhead_decided(measured(17.0, 23.0), 2.0)  # wholly above
    assert not overhead_decided(measured(1.4, 2.2), 2.0)  # straddles the limit
    assert not overhead_decided(measured(-0.5, 1.8), 2.0)  # below, but unresolved


def test_a_few_rounds_that_met_a_burst_of_load_do_not_widen_the_interval():
    quiet = [([11.0 + 0.1 * (i % 3)], [10.0]) for i in range(60)]
    burst = [([10.0 + 9 * (-1) ** i], [10.0]) for i in range(4)]  # +9 and -9 ms rounds
    result = breakers.overhead_summary("rag_api", quiet + burst)
    assert result["interval_ms"][0] >= 0.9 and result["interval_ms"][1] <= 1.3, result
    assert breakers.overhead_decided(result, 2.0)
