"""The voice service's audio helpers and grammar, and the suite's WAV checker."""

import io
import struct
import wave
from array import array

import pytest
from xnai_qa import wavcheck

from testbed.voice.app import GRAMMAR
from testbed.voice.audio import BadAudio, pcm16_mono, resample, with_true_sizes


def clip(seconds: float = 0.5, rate: int = 22050, streamed: bool = False) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(array("h", [(i * 37) % 2000 - 1000 for i in range(int(seconds * rate))]).tobytes())
    data = bytearray(buf.getvalue())
    if streamed:  # what a writer to a pipe leaves: sizes it could not fill in
        struct.pack_into("<I", data, 4, 0x7FFFF024)
        struct.pack_into("<I", data, 40, 0x7FFFF000)
    return bytes(data)


def test_a_complete_clip_is_valid_with_its_duration():
    info = wavcheck.inspect(clip(0.5))
    assert info["valid"] and info["rate"] == 22050 and info["duration_s"] == pytest.approx(0.5, abs=0.01)


def test_a_truncated_clip_is_caught_by_its_sizes():
    data = clip(1.0)
    info = wavcheck.inspect(data[: 44 + (len(data) - 44) // 2])
    assert not info["valid"]
    assert any("truncated" in p for p in info["problems"])


def test_not_a_wav_is_named():
    assert wavcheck.inspect(b"hello")["problems"] == ["not a RIFF/WAVE file"]


def test_sizes_left_by_a_pipe_writer_are_filled_in():
    assert not wavcheck.inspect(clip(streamed=True))["valid"]
    assert wavcheck.inspect(with_true_sizes(clip(streamed=True)))["valid"]


def test_resampling_keeps_the_duration():
    samples, rate = pcm16_mono(clip(1.0, rate=22050))
    assert len(resample(samples, rate, 16000)) == 16000


def test_bad_audio_is_refused():
    with pytest.raises(BadAudio):
        pcm16_mono(b"RIFF1234WAVEjunk")


def test_every_word_of_the_command_grammar_is_in_the_recogniser_dictionary():
    pocketsphinx = pytest.importorskip("pocketsphinx")
    pocketsphinx.Decoder(samprate=16000, jsgf=str(GRAMMAR), logfn="/dev/null")  # raises on an unknown word
