"""WAV helpers of the voice service: parse, check, resample to the recogniser's 16 kHz mono."""

from __future__ import annotations

import io
import struct
import wave
from array import array


class BadAudio(ValueError):
    """Not a usable 16-bit PCM WAV."""


def pcm16_mono(data: bytes) -> tuple[array, int]:
    """The samples (16-bit, first channel) and rate of a PCM WAV."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            if wav.getsampwidth() != 2:
                raise BadAudio(f"{wav.getsampwidth() * 8}-bit audio: send 16-bit PCM")
            channels, rate = wav.getnchannels(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError, struct.error) as err:
        raise BadAudio(f"not a PCM WAV: {err}") from None
    samples = array("h")
    samples.frombytes(frames[: len(frames) - len(frames) % 2])
    return (samples[::channels] if channels > 1 else samples), rate


def resample(samples: array, rate: int, target: int = 16000) -> array:
    """Linear interpolation to ``target`` Hz (enough for speech recognition)."""
    if rate == target or not samples:
        return samples
    count = int(len(samples) * target / rate)
    step = rate / target
    out = array("h", bytes(2 * count))
    last = len(samples) - 1
    for i in range(count):
        pos = i * step
        j = int(pos)
        frac = pos - j
        nxt = samples[j + 1] if j < last else samples[j]
        out[i] = int(samples[j] + (nxt - samples[j]) * frac)
    return out


def with_true_sizes(wav: bytes) -> bytes:
    """The clip with its RIFF and data chunk sizes set to the bytes present (a tool writing WAV to a
    pipe, as espeak-ng --stdout does, cannot seek back to fill them in)."""
    out = bytearray(wav)
    struct.pack_into("<I", out, 4, len(out) - 8)
    pos = 12
    while pos + 8 <= len(out):
        size = struct.unpack_from("<I", out, pos + 4)[0]
        if out[pos:pos + 4] == b"data":
            struct.pack_into("<I", out, pos + 4, len(out) - pos - 8)
            break
        pos += 8 + size + (size % 2)
    return bytes(out)
