"""A strict Server-Sent Events parser and the XNAi stream grammar.

The parser follows the WHATWG event-stream format: lines end in LF, CR or
CRLF; ``data``, ``event``, ``id`` and ``retry`` fields; ``:`` comments; a
blank line dispatches the frame.  It is strict where a lenient reader would
hide a broken server: bytes must be UTF-8, and a stream that ends inside a
frame (fields with no blank-line terminator) is an error, as is a frame that
grows past a bound without ever being terminated.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass, field
from typing import Any

MAX_FRAME_BYTES = 1 << 20


class FramingError(Exception):
    """The byte stream is not a well-formed event stream; the message says where and why."""


@dataclass
class Event:
    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None
    arrived: float = 0.0  # when the bytes that completed this frame arrived (monotonic seconds)
    index: int = 0
    payload: Any = None  # the frame's decoded JSON


@dataclass
class SSEParser:
    """Feed it bytes with their arrival time; it returns complete events."""

    offset: int = 0
    events_seen: int = 0
    comments: int = 0
    unknown_fields: int = 0
    _decoder: codecs.IncrementalDecoder = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("strict"))
    _text: str = ""
    _pending_cr: bool = False
    _data: list = field(default_factory=list)
    _event: str = ""
    _id: str | None = None
    _retry: int | None = None
    _frame_bytes: int = 0
    _in_frame: bool = False
    _bom_checked: bool = False

    def feed(self, chunk: bytes, arrived: float) -> list[Event]:
        try:
            text = self._decoder.decode(chunk)
        except UnicodeDecodeError as err:
            raise FramingError(f"stream is not UTF-8: invalid byte 0x{chunk[err.start]:02x} at stream offset "
                               f"{self.offset + err.start}") from None
        self.offset += len(chunk)
        if not self._bom_checked and text:
            self._bom_checked = True
            text = text.removeprefix("\ufeff")
        return self._lines(text, arrived)

    def _lines(self, text: str, arrived: float) -> list[Event]:
        out: list[Event] = []
        buf = self._text + text
        start = 0
        i = 0
        if self._pending_cr and buf.startswith("\n"):
            start = i = 1  # the LF of a CRLF split across chunks
        self._pending_cr = False
        while i < len(buf):
            ch = buf[i]
            if ch in "\r\n":
                line = buf[start:i]
                if ch == "\r":
                    if i + 1 < len(buf):
                        if buf[i + 1] == "\n":
                            i += 1
                    else:
                        self._pending_cr = True
                start = i + 1
                event = self._line(line, arrived)
                if event is not None:
                    out.append(event)
            i += 1
        self._text = buf[start:]
        self._frame_bytes += len(text.encode())
        if self._in_frame and self._frame_bytes > MAX_FRAME_BYTES:
            raise FramingError(f"a frame grew past {MAX_FRAME_BYTES} bytes without a blank-line terminator "
                               f"(at stream offset {self.offset}): frames are never terminated")
        return out

    def _line(self, line: str, arrived: float) -> Event | None:
        if line == "":
            if not self._in_frame:
                return None
            event = None
            if self._data:
                self.events_seen += 1
                event = Event("\n".join(self._data), self._event or "message", self._id, self._retry, arrived,
                              self.events_seen)
            self._data, self._event, self._retry, self._in_frame, self._frame_bytes = [], "", None, False, 0
            return event
        if line.startswith(":"):
            self.comments += 1
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        self._in_frame = True
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            if value.isdigit():
                self._retry = int(value)
        else:
            self.unknown_fields += 1
        return None

    def close(self) -> None:
        """End of stream: fail if a frame was left unterminated or bytes were left undecoded."""
        try:
            rest = self._decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise FramingError(f"stream ended inside a UTF-8 sequence at offset {self.offset}") from None
        if rest or self._text:
            raise FramingError(f"stream ended inside a line ({(self._text + rest)[:60]!r}): "
                               "data without a blank-line terminator")
        if self._in_frame:
            pending = "\n".join(self._data)[:60]
            raise FramingError("stream ended inside a frame: its fields were never followed by a blank line "
                               f"(pending data {pending!r})")


@dataclass(frozen=True)
class Grammar:
    """The XNAi stream's frame vocabulary; every name comes from the variables."""

    type_field: str = "type"
    sources: str = "sources"
    token: str = "token"  # noqa: S105 - the token frame's type name
    done: str = "done"
    error: str = "error"
    content_field: str = "content"


def decode_payloads(events: list[Event]) -> None:
    for event in events:
        try:
            event.payload = json.loads(event.data)
        except ValueError:
            raise FramingError(f"frame {event.index} is not JSON: {event.data[:80]!r}") from None


def grammar_problems(events: list[Event], g: Grammar, complete: bool = True) -> list[str]:
    """Why ``events`` break the XNAi grammar: optional sources, tokens, then exactly one final done (or an error)."""
    problems = []
    types = []
    for event in events:
        payload = event.payload
        if not isinstance(payload, dict) or g.type_field not in payload:
            problems.append(f"frame {event.index} has no '{g.type_field}' field: {event.data[:80]!r}")
            continue
        types.append(payload[g.type_field])
    if problems:
        return problems
    known = {g.sources, g.token, g.done, g.error}
    unknown = [t for t in types if t not in known]
    if unknown:
        problems.append(f"unknown frame types {sorted(set(map(str, unknown)))}")
    if g.sources in types and types.index(g.sources) != 0:
        problems.append(f"'{g.sources}' frame at position {types.index(g.sources) + 1}, not first")
    if types.count(g.sources) > 1:
        problems.append(f"{types.count(g.sources)} '{g.sources}' frames (at most one)")
    for event, kind in zip(events, types, strict=True):
        if kind == g.token and not isinstance(event.payload.get(g.content_field), str):
            problems.append(f"token frame {event.index} has no string '{g.content_field}'")
            break
    if not complete:
        return problems
    if not types:
        return ["the stream carried no frame"]
    last = types[-1]
    if last == g.error:
        if types.count(g.error) > 1:
            problems.append("more than one error frame")
        return problems
    if types.count(g.done) != 1:
        problems.append(f"{types.count(g.done)} '{g.done}' frames (exactly one expected)")
    elif last != g.done:
        problems.append(f"'{g.done}' is not the last frame")
    if g.token not in types:
        problems.append(f"no '{g.token}' frame")
    return problems
