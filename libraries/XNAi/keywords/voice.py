"""Voice keywords: speech synthesis and recognition at ``${VOICE_URL}``, checked as a listener would.

The stack runs voice inside its API and UI processes with no HTTP endpoint of its
own; a target without ``${VOICE_URL}`` skips the voice tests, saying so.  So does a
voice service whose engines are missing (its ``/health`` names them).
"""

from __future__ import annotations

import re
import time

import requests
from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure, SkipExecution
from xnai_qa import capabilities, report, safehttp, wavcheck

from ..base import LibraryComponent


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


class VoiceKeywords(LibraryComponent):
    """Synthesises and recognises speech, and judges the audio."""

    def _url(self, path: str) -> str:
        base = self._var("VOICE_URL", "")
        if not base:
            raise capabilities.skip("voice", "${VOICE_URL} is empty (the XNAi stack may run voice inside its API "
                                    "and UI processes)")
        safehttp.check(base, self._var("ALLOWED_HOSTS", []))
        return base + path

    def _post(self, path: str, **kwargs) -> tuple[requests.Response, float]:
        url = self._url(path)
        started = time.perf_counter()
        try:
            resp = safehttp.request("POST", url, self._var("ALLOWED_HOSTS", []),
                                    timeout=float(self._var("REQUEST_TIMEOUT_S", 10)) * 3, **kwargs)
        except requests.RequestException as err:
            raise Failure(f"POST {url} failed: {type(err).__name__}: {err}") from None
        return resp, time.perf_counter() - started

    @keyword(tags=["requires:voice"])
    def voice_engines_should_be_available(self) -> dict:
        """Skips the test (naming what is missing and how to install it) when the voice service has no
        synthesis or recognition engine; returns its health otherwise.

        Example:
        | Voice Engines Should Be Available |
        """
        url = self._url("/health")
        try:
            health = safehttp.request("GET", url, self._var("ALLOWED_HOSTS", []),
                                      timeout=float(self._var("REQUEST_TIMEOUT_S", 10))).json()
        except (requests.RequestException, ValueError) as err:
            raise Failure(f"GET {url} failed: {err}") from None
        if health.get("problems"):
            raise SkipExecution(
                "Voice engines missing: " + "; ".join(f"{k}: {v}" for k, v in health["problems"].items())
            )
        logger.info(f"voice engines: {health.get('engines')}")
        return health

    @keyword(tags=["requires:voice"])
    def synthesise_speech(self, text: str, expected_status: int = 200) -> dict:
        """``POST /tts``: the clip (``audio``), its WAV structure (``valid``, ``problems``, ``rate``,
        ``duration_s``), ``seconds`` taken and ``text``.  With ``expected_status`` other than 200 the
        answer's ``status`` and ``body`` are returned instead.

        Example:
        | ${speech}= | Synthesise Speech | show the health of the stack |
        """
        resp, seconds = self._post("/tts", json={"text": text})
        if resp.status_code != int(expected_status):
            raise Failure(f"POST /tts answered {resp.status_code}, expected {expected_status}: {resp.text[:300]}")
        if resp.status_code != 200:
            return {"status": resp.status_code, "body": resp.text, "seconds": round(seconds, 3)}
        info = wavcheck.inspect(resp.content)
        logger.info(f"{text!r}: {info} in {seconds * 1000:.0f} ms")
        return {**info, "audio": resp.content, "seconds": round(seconds, 3), "text": text, "status": 200}

    @keyword("Speech Should Be A Valid WAV")
    def speech_should_be_a_valid_wav(self, speech: dict, min_seconds_per_word: float = 0.1,
                                     max_seconds_per_word: float = 1.5) -> None:
        """Fails unless the clip is a complete WAV (sizes match its bytes) whose duration is plausible for
        its words (between ``min_seconds_per_word`` and ``max_seconds_per_word`` each).

        Example:
        | Speech Should Be A Valid WAV | ${speech} |
        """
        if not speech["valid"]:
            raise Failure(f"The speech for {speech['text']!r} is not a valid WAV: " + "; ".join(speech["problems"]))
        words = len(_words(speech["text"]))
        low, high = words * float(min_seconds_per_word), words * float(max_seconds_per_word)
        duration = speech.get("duration_s", 0)
        if not low <= duration <= high:
            raise Failure(f"{duration} s of speech for {words} words is implausible (expected {low:g} to {high:g} s).")

    @keyword(tags=["requires:voice"])
    def recognise_speech(self, speech: dict) -> dict:
        """``POST /stt`` with the clip: ``text`` heard, ``wake_word`` (heard at the start) and ``seconds``.

        Example:
        | ${heard}= | Recognise Speech | ${speech} |
        """
        resp, seconds = self._post("/stt", data=speech["audio"], headers={"Content-Type": "audio/wav"})
        if resp.status_code != 200:
            raise Failure(f"POST /stt answered {resp.status_code}: {resp.text[:300]}")
        heard = {**resp.json(), "seconds": round(seconds, 3)}
        logger.info(f"heard {heard['text']!r} (wake word: {heard.get('wake_word')}) in {seconds * 1000:.0f} ms")
        return heard

    @keyword
    def recognised_words_should_be(self, heard: dict, text: str) -> None:
        """Fails unless the words heard are exactly the words of ``text`` (case and punctuation aside),
        naming the missing and the extra ones.

        Example:
        | Recognised Words Should Be | ${heard} | show the health of the stack |
        """
        said, got = _words(text), _words(heard["text"])
        if said != got:
            missing = [w for w in said if w not in got]
            extra = [w for w in got if w not in said]
            raise Failure(f"Said {text!r}, heard {heard['text']!r} (missing {missing}, extra {extra}).")

    @keyword
    def voice_round_trip_should_be_within(self, speech: dict, heard: dict, bound_ms: float) -> float:
        """Fails unless synthesis plus recognition of one clip took less than ``bound_ms``; returns the
        total in milliseconds (also a key figure at the top of the report).

        Example:
        | Voice Round Trip Should Be Within | ${speech} | ${heard} | ${VOICE_LATENCY_BOUND_MS} |
        """
        synthesis_ms, recognition_ms = float(speech["seconds"]) * 1000, float(heard["seconds"]) * 1000
        total_ms = round(synthesis_ms + recognition_ms, 1)
        parts = f"synthesis {synthesis_ms:.0f} ms, recognition {recognition_ms:.0f} ms; bound {float(bound_ms):g} ms"
        report.figure(f"voice round trip {total_ms:g} ms ({parts})")
        if total_ms >= float(bound_ms):
            raise Failure(f"Synthesis and recognition took {total_ms:g} ms ({parts}).")
        return total_ms

    @keyword(tags=["requires:voice"])
    def voice_call_should_be_refused(self, engine: str) -> dict:
        """Calls the ``tts`` or ``stt`` engine once and fails unless it is refused with 503; returns the
        answer (``status``, ``body``, ``seconds``).

        Example:
        | Voice Call Should Be Refused | tts |
        """
        if engine == "tts":
            resp, seconds = self._post("/tts", json={"text": "show the health of the stack"})
        elif engine == "stt":
            resp, seconds = self._post("/stt", data=b"RIFF", headers={"Content-Type": "audio/wav"})
        else:
            raise Failure(f"engine={engine!r}: use tts or stt.")
        if resp.status_code != 503:
            raise Failure(f"The {engine} call answered {resp.status_code}, not 503: {resp.text[:200]}")
        return {"status": resp.status_code, "body": resp.text, "seconds": round(seconds, 3)}
