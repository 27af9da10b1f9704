"""The strict SSE parser and the XNAi grammar, on crafted byte streams."""

import json

import pytest
from xnai_qa.sse import (
    FramingError,
    Grammar,
    SSEParser,
    decode_payloads,
    grammar_problems,
)


def parse(*chunks: bytes):
    parser = SSEParser()
    events = []
    for chunk in chunks:
        events += parser.feed(chunk, 0.0)
    parser.close()
    return events, parser


def test_fields_comments_and_multiline_data():
    events, parser = parse(b": hello\nevent: note\nid: 7\nretry: 1500\ndata: one\ndata: two\n\ndata:x\n\n")
    assert [e.data for e in events] == ["one\ntwo", "x"]
    assert events[0].event == "note" and events[0].id == "7" and events[0].retry == 1500
    assert events[1].event == "message"
    assert parser.comments == 1


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(ending):
    events, _ = parse(b"data: a" + ending + ending + b"data: b" + ending + ending)
    assert [e.data for e in events] == ["a", "b"]


def test_crlf_split_across_chunks_is_one_line_end():
    events, _ = parse(b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n")
    assert [e.data for e in events] == ["a", "b"]


def test_utf8_split_across_chunks():
    data = "data: é€\n\n".encode()
    events, _ = parse(data[:7], data[7:])
    assert events[0].data == "é€"


def test_non_utf8_is_refused_with_its_offset():
    with pytest.raises(FramingError, match=r"not UTF-8: invalid byte 0xff at stream offset 6"):
        parse(b"data: \xff\n\n")


def test_unterminated_frame_at_end_of_stream_is_an_error():
    with pytest.raises(FramingError, match="stream ended inside a frame"):
        parse(b"data: a\n\ndata: b\n")


def test_unterminated_line_at_end_of_stream_is_an_error():
    with pytest.raises(FramingError, match="stream ended inside a line"):
        parse(b"data: a\n\ndata: b")


def test_frames_never_terminated_are_caught_before_memory_runs_out():
    parser = SSEParser()
    with pytest.raises(FramingError, match="never terminated"):
        for _ in range(20000):
            parser.feed(b"data: " + b"x" * 100 + b"\n", 0.0)


def test_arrival_time_is_that_of_the_completing_chunk():
    parser = SSEParser()
    assert parser.feed(b"data: a\n", 1.0) == []
    events = parser.feed(b"\n", 2.5)
    assert events[0].arrived == 2.5


def frames(*payloads):
    events, _ = parse(b"".join(f"data: {json.dumps(p)}\n\n".encode() for p in payloads))
    decode_payloads(events)
    return events


G = Grammar()


def test_a_complete_xnai_stream_is_grammatical():
    events = frames({"type": "sources", "sources": []}, {"type": "token", "content": "a"},
                    {"type": "token", "content": "b"}, {"type": "done", "tokens": 2})
    assert grammar_problems(events, G) == []


def test_sources_are_optional_and_an_error_may_end_a_stream():
    assert grammar_problems(frames({"type": "token", "content": "a"}, {"type": "done"}), G) == []
    assert grammar_problems(frames({"type": "token", "content": "a"}, {"type": "error", "error": "x"}), G) == []


@pytest.mark.parametrize("payloads, problem", [
    ([{"type": "token", "content": "a"}], "0 'done' frames"),
    ([{"type": "token", "content": "a"}, {"type": "done"}, {"type": "done"}], "2 'done' frames"),
    ([{"type": "done"}, {"type": "token", "content": "a"}], "'done' is not the last frame"),
    ([{"type": "token", "content": "a"}, {"type": "sources", "sources": []}, {"type": "done"}], "not first"),
    ([{"type": "done"}], "no 'token' frame"),
    ([{"type": "token"}, {"type": "done"}], "no string 'content'"),
    ([{"kind": "token"}], "has no 'type' field"),
    ([{"type": "weird"}, {"type": "done"}], "unknown frame types"),
])
def test_grammar_breaks_are_named(payloads, problem):
    assert any(problem in p for p in grammar_problems(frames(*payloads), G))


def test_field_names_come_from_the_grammar():
    g = Grammar(type_field="kind", token="tok", done="end", content_field="text")
    assert grammar_problems(frames({"kind": "tok", "text": "a"}, {"kind": "end"}), g) == []


def test_non_json_frame_is_a_framing_error():
    events, _ = parse(b"data: not json\n\n")
    with pytest.raises(FramingError, match="frame 1 is not JSON"):
        decode_payloads(events)
