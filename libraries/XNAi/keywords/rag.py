"""RAG keywords: the corpus's facts, the figures of an answer, document search.

Questions are asked with the API keywords (``api.py``: `Ask The RAG API`).  Facts the corpus holds are listed in
``${RAG_FACTS}`` (question, the document that holds the answer, a phrase of it).
"""

from __future__ import annotations

import itertools

import requests
from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure
from xnai_qa import capabilities, safehttp

from ..base import LibraryComponent


class RagKeywords(LibraryComponent):
    """Judges the RAG API's answers (the facts its corpus holds, an answer's figures) and searches its documents.
    Questions are asked with `Ask The RAG API`."""

    @keyword("Get RAG Facts", tags=["requires:rag-facts"])
    def get_rag_facts(self) -> list:
        """``${RAG_FACTS}``: each ``question``, ``source`` (the document holding the answer) and
        ``answer_contains``.  Skips the test when the target lists none (the facts depend on its corpus).

        Example:
        | @{facts}= | Get RAG Facts |
        """
        facts = self._var("RAG_FACTS", []) or []
        if not facts:
            raise capabilities.skip("rag-facts", "${RAG_FACTS} is empty")
        for fact in facts:
            missing = [k for k in ("question", "source", "answer_contains") if k not in fact]
            if missing:
                raise Failure(f"${{RAG_FACTS}} entry {fact} lacks {', '.join(missing)}.")
        return list(facts)

    @keyword
    def search_the_docs(self, query: str, limit: int = 5, via: str = "gateway") -> list:
        """``GET /docs/search``: the results (``id``, ``name``, ``score`` ...), best first.

        Example:
        | ${results}= | Search The Docs | circuit breaker |
        | Should Be Equal | ${results}[0][id] | circuit-breakers |
        """
        url = self._api_url("/docs/search", via)
        try:
            resp = safehttp.request(
                "GET",
                url,
                self._var("ALLOWED_HOSTS", []),
                params={"query": query, "limit": int(limit)},
                timeout=float(self._var("REQUEST_TIMEOUT_S", 10)),
            )
        except requests.RequestException as err:
            raise Failure(f"GET {url} failed: {type(err).__name__}: {err}") from None
        if resp.status_code != 200:
            raise Failure(f"GET {url} answered {resp.status_code}: {resp.text[:300]}")
        results = resp.json().get("results", [])
        logger.info(f"{query!r}: " + ", ".join(f"{r.get('id')} ({r.get('score')})" for r in results))
        return results

    @keyword
    def answer_figures_should_agree(self, reply: dict) -> None:
        """Fails unless an answer of `Ask The RAG API` reports figures that agree: ``tokens_generated`` above
        zero, ``duration_ms`` above zero and not longer than the client waited, and ``token_rate_tps``
        the tokens over that duration (within 2 %, the contract's rounding aside).

        Example:
        | ${reply}= | Ask The RAG API | ${question} |
        | Answer Figures Should Agree | ${reply} |
        """
        answer = reply["answer"]
        tokens, duration_ms, rate = (answer.get(k) for k in ("tokens_generated", "duration_ms", "token_rate_tps"))
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (tokens, duration_ms, rate)):
            raise Failure(f"The answer lacks its figures as numbers: tokens_generated {tokens!r}, duration_ms "
                          f"{duration_ms!r}, token_rate_tps {rate!r}.")
        problems = []
        if tokens <= 0 or duration_ms <= 0:
            problems.append(f"{tokens} tokens in {duration_ms} ms")
        if duration_ms > reply["seconds"] * 1000 + 5:
            problems.append(f"duration_ms {duration_ms} is longer than the {reply['seconds'] * 1000:.0f} ms the "
                            "client waited")
        if duration_ms > 0:
            expected = tokens / (duration_ms / 1000)
            if abs(rate - expected) > 0.02 * expected + 0.01:
                problems.append(f"token_rate_tps {rate} is not {tokens} tokens over {duration_ms} ms "
                                f"({expected:.2f}/s)")
        if problems:
            raise Failure("The answer's figures disagree: " + "; ".join(problems) + ".")

    @keyword
    def search_results_should_follow_the_contract(self, results: list) -> None:
        """Fails unless every result of `Search The Docs` has the contract's fields (``id``, ``name``,
        ``description`` as text, ``links`` a list of texts, ``score`` a number) and the scores never rise
        down the list (best first).

        Example:
        | Search Results Should Follow The Contract | ${results} |
        """
        problems = []
        for index, result in enumerate(results):
            text = [f for f in ("id", "name", "description") if not isinstance(result.get(f), str)]
            if text:
                problems.append(f"result {index}: {', '.join(text)} not text")
            links = result.get("links")
            if not isinstance(links, list) or not all(isinstance(link, str) for link in links):
                problems.append(f"result {index}: links {links!r} is not a list of texts")
            if not isinstance(result.get("score"), (int, float)) or isinstance(result.get("score"), bool):
                problems.append(f"result {index}: score {result.get('score')!r} is not a number")
        scores = [r["score"] for r in results if isinstance(r.get("score"), (int, float))]
        if any(later > earlier for earlier, later in itertools.pairwise(scores)):
            problems.append(f"the scores are not best first: {scores}")
        if problems:
            raise Failure("The search results do not follow the contract: " + "; ".join(problems) + ".")
