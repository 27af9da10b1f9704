"""Secrets never leak: suites that use every secret run at TRACE level (arguments and return values
logged), and no secret value appears in output.xml, log.html, report.html, xunit.xml or the console.

log.html and report.html keep their texts zlib-compressed and base64-encoded inside JavaScript:
they are decoded before searching, so a leak there cannot hide.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from robot.api import ExecutionResult, ResultVisitor

REPO = Path(__file__).resolve().parents[2]
SECRETS = ("redis_password", "postgres_password", "vikunja_token")
# Suites whose tests pass every secret through keywords: Redis (KG-1), the task service's token and
# database password (Vikunja), error answers checked against the secrets (error handling).
SUITES = ("Kg1 Service Integration", "Vikunja Integration", "Error Handling")

pytestmark = pytest.mark.timeout(900)


class _Passed(ResultVisitor):
    """Collects the names of passed tests."""

    def __init__(self, names: set):
        self.names = names

    def visit_test(self, test):
        if test.passed:
            self.names.add(test.name)


def html_texts(path: Path) -> str:
    """Every string of a Robot log/report, decoded ('*' = plain, else base64 of zlib data)."""
    html = path.read_text(errors="replace")
    texts = [html]
    for literal in re.findall(r'"((?:[^"\\]|\\.)*)"', html):
        if literal.startswith("*"):
            texts.append(literal[1:])
            continue
        if len(literal) < 8 or not re.fullmatch(r"[A-Za-z0-9+/=]+", literal):
            continue
        try:
            texts.append(zlib.decompress(base64.b64decode(literal)).decode("utf-8", "replace"))
        except (ValueError, zlib.error):
            continue
    return "\n".join(texts)


def test_html_decoding_finds_a_compressed_string():
    packed = base64.b64encode(zlib.compress(b"the hidden value s3cr3t")).decode()
    page = Path(__file__).with_name("_decode_probe.html")
    try:
        page.write_text(f'window.output["strings"] = ["*plain", "{packed}"];')
        assert "s3cr3t" in html_texts(page)
    finally:
        page.unlink()


def test_no_secret_appears_in_any_output_or_the_console(tmp_path, testbed_env):
    out = tmp_path / "out"
    selection = [arg for suite in SUITES for arg in ("--suite", suite)]
    result = subprocess.run(
        [sys.executable, "-m", "robot", "--outputdir", str(out), "--loglevel", "TRACE", "--xunit", "xunit.xml",
         "--exclude", "slow", *selection, "suites/"],
        cwd=REPO, env=testbed_env, capture_output=True, text=True, timeout=800, check=False,
    )
    configs = [json.loads(p.read_text()) for p in Path(testbed_env["XNAI_TESTBED_HOME"]).glob("run-*/config.json")]
    assert configs, "no testbed config: the suites did not start a testbed"
    assert "tests, " in result.stdout and " passed" in result.stdout, result.stdout[-2000:]
    texts = {
        "console": result.stdout + result.stderr,
        "output.xml": (out / "output.xml").read_text(errors="replace"),
        "xunit.xml": (out / "xunit.xml").read_text(errors="replace"),
        "log.html": html_texts(out / "log.html"),
        "report.html": html_texts(out / "report.html"),
    }
    # The secrets were used: the tests that authenticate with them passed.
    passed = set()
    ExecutionResult(str(out / "output.xml")).visit(_Passed(passed))
    for test in ("Redis Accepts The Configured Credentials", "A Valid Token Is Accepted"):
        assert test in passed, f"'{test}' did not pass: the secrets were not exercised"
    leaks = [f"{name} in {where}" for config in configs for name in SECRETS
             for where, text in texts.items() if config[name] in text]
    assert not leaks, f"secrets leaked: {leaks}"
