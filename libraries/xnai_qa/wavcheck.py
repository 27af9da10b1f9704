"""WAV structure checks: a clip is valid when its RIFF and data chunk sizes match the bytes present."""

from __future__ import annotations

import struct


def inspect(data: bytes) -> dict:
    """``valid``, ``problems`` and, when readable, ``rate``, ``channels``, ``bits``, ``duration_s``."""
    problems: list[str] = []
    info: dict = {"size": len(data)}
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return {**info, "valid": False, "problems": ["not a RIFF/WAVE file"]}
    riff_size = struct.unpack("<I", data[4:8])[0]
    if riff_size != len(data) - 8:
        problems.append(f"RIFF size says {riff_size + 8} bytes, the file has {len(data)}")
    pos, fmt, data_size, data_present = 12, None, None, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = pos + 8
        if chunk == b"fmt ":
            fmt = struct.unpack("<HHIIHH", data[body:body + 16])
        elif chunk == b"data":
            data_size = size
            data_present = len(data) - body
            if size != data_present:
                problems.append(f"data chunk says {size} bytes, {data_present} are present (truncated or padded)")
            break
        pos = body + size + (size % 2)
    if fmt is None:
        problems.append("no fmt chunk")
    if data_size is None:
        problems.append("no data chunk")
    if fmt:
        _tag, channels, rate, _byte_rate, align, bits = fmt
        info.update(rate=rate, channels=channels, bits=bits)
        if rate and align:
            info["duration_s"] = round(data_present / align / rate, 3)
        if data_size is not None and align and data_size % align:
            problems.append(f"data chunk of {data_size} bytes is not a whole number of {align}-byte frames")
    return {**info, "valid": not problems, "problems": problems}
