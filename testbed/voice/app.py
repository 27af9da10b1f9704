"""The testbed's voice service: speech synthesis (eSpeak NG) and recognition (PocketSphinx).

In the stack, voice runs inside the API and UI processes behind the ``voice_tts``
and ``voice_stt`` breakers, wake word "hey nova".  Here it is its own service so
the suite can reach it: ``POST /tts`` ``{"text"}`` -> ``audio/wav``; ``POST /stt``
(a WAV body) -> ``{"text", "wake_word"}``; ``GET /health`` (which engines run).
Recognition uses PocketSphinx's English model with the assistant's command
grammar (``commands.gram``): an optional wake word, then one command.

Both engines are called through Redis-backed breakers (the RAG API's), so a
failing engine opens its breaker and calls are then refused at once with 503.
``POST /_debug/voice`` ``{"fail": "tts"|"stt"|null}`` makes an engine fail
(debug routes only).  Defects: ``voice-breaker-never-opens``, ``tts-truncated-wav``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from testbed.config import TestbedConfig
from testbed.rag_api.breaker import CircuitOpenError, RedisCircuitBreaker

from .audio import BadAudio, pcm16_mono, resample, with_true_sizes

GRAMMAR = Path(__file__).with_name("commands.gram")
WAKE_WORD = "hey nova"


class EngineFailure(Exception):
    """The speech engine failed (or was made to)."""


class TTSRequest(BaseModel):
    text: str = Field(min_length=1, max_length=500)


class VoiceControl(BaseModel):
    fail: str | None = Field(default=None, pattern="^(tts|stt)$")


def espeak_binary() -> str | None:
    return shutil.which("espeak-ng")


def create_app(cfg: TestbedConfig | None = None) -> FastAPI:
    if cfg is None:
        cfg = TestbedConfig.from_file(Path(os.environ["XNAI_TESTBED_CONFIG"]))
    timings = cfg.timings
    control: dict = {"fail": None}
    state: dict = {}

    def breaker_has_defect(name: str) -> bool:
        """The voice breakers carry the testbed's breaker switches; voice-breaker-never-opens is their never-opens."""
        return cfg.has_defect(name) or (name == "breaker-never-opens" and cfg.has_defect("voice-breaker-never-opens"))

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        client = aioredis.Redis(host="127.0.0.1", port=cfg.port("redis_proxy"), password=cfg.redis_password,
                                socket_timeout=timings.check_timeout_s,
                                socket_connect_timeout=timings.check_timeout_s)
        state["redis"] = client
        state["breakers"] = {
            spec.name: RedisCircuitBreaker(spec, client, timings.breaker_ttl_s, has_defect=breaker_has_defect)
            for spec in timings.breakers
            if spec.name in ("voice_tts", "voice_stt")
        }
        state["decoder"] = None
        try:
            from pocketsphinx import Decoder  # noqa: PLC0415

            state["decoder"] = Decoder(samprate=16000, jsgf=str(GRAMMAR), logfn=os.devnull)
        except Exception as err:  # noqa: BLE001 - reported by /health, and /stt answers 503
            state["decoder_error"] = f"{type(err).__name__}: {err}"
        state["stt_lock"] = asyncio.Lock()
        yield
        await state["redis"].aclose()

    app = FastAPI(title="XNAi testbed voice", lifespan=lifespan)

    def engines() -> dict:
        return {"tts": "espeak-ng" if espeak_binary() else None,
                "stt": "pocketsphinx" if state.get("decoder") is not None else None}

    @app.get("/health")
    async def health():
        found = engines()
        problems = {}
        if not found["tts"]:
            problems["tts"] = "espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)"
        if not found["stt"]:
            problems["stt"] = state.get("decoder_error", "pocketsphinx is not installed")
        return {"status": "healthy" if not problems else "degraded", "engines": found, "problems": problems,
                "wake_word": WAKE_WORD}

    async def through(name: str, work):
        breaker = state["breakers"][name]
        try:
            await breaker.before_call()
        except CircuitOpenError:
            return JSONResponse({"error": f"{name} unavailable (circuit open)"}, status_code=503)
        try:
            result = await work()
        except EngineFailure as err:
            await breaker.record_failure()
            return JSONResponse({"error": f"{name} failed: {err}"}, status_code=503)
        await breaker.record_success()
        return result

    async def synthesise(text: str) -> bytes:
        if control["fail"] == "tts":
            raise EngineFailure("the speech synthesiser crashed")
        binary = espeak_binary()
        if not binary:
            raise EngineFailure("espeak-ng is not installed")
        proc = await asyncio.create_subprocess_exec(binary, "--stdout", "-v", "en-us", "-s", "120", text,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
        except TimeoutError:
            proc.kill()
            raise EngineFailure("espeak-ng took longer than 30 s") from None
        if proc.returncode != 0 or not out:
            raise EngineFailure(f"espeak-ng exited {proc.returncode}: {err.decode(errors='replace')[:200]}")
        out = with_true_sizes(out)
        if cfg.has_defect("tts-truncated-wav"):
            out = out[: 44 + (len(out) - 44) // 2]  # the header still promises the whole clip
        return out

    def recognise(wav: bytes) -> str:
        samples, rate = pcm16_mono(wav)
        pcm = resample(samples, rate).tobytes()
        decoder = state["decoder"]
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp else ""

    @app.post("/tts")
    async def tts(req: TTSRequest):
        async def work():
            return Response(await synthesise(req.text), media_type="audio/wav")

        return await through("voice_tts", work)

    @app.post("/stt")
    async def stt(request: Request):
        wav = await request.body()

        async def work():
            if control["fail"] == "stt":
                raise EngineFailure("the recogniser crashed")
            if state.get("decoder") is None:
                raise EngineFailure(state.get("decoder_error", "pocketsphinx is not installed"))
            try:
                async with state["stt_lock"]:  # one decoder, one utterance at a time
                    if cfg.has_defect("stt-slow"):
                        await asyncio.sleep(3.5)  # e.g. the model loaded again for every clip
                    text = await asyncio.to_thread(recognise, wav)
            except BadAudio as err:
                return JSONResponse({"error": str(err)}, status_code=400)
            return {"text": text, "wake_word": text.startswith(WAKE_WORD)}

        return await through("voice_stt", work)

    if cfg.debug_endpoints:
        @app.post("/_debug/voice")
        async def debug_voice(req: VoiceControl):
            control["fail"] = req.fail
            return dict(control)

    return app
