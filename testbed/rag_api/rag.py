"""Retrieval over the shipped corpus and a deterministic token generator.

No model files: answers are built from the best-matching documents, so a
question whose facts live in the corpus gets an answer that cites them, and
the same question always gets the same tokens.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

CORPUS_DIR = Path(__file__).resolve().parent.parent / "corpus"
_WORD = re.compile(r"[a-z0-9_]+")
_STOP = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "in", "is", "it", "its", "of", "on", "or",
     "the", "to", "what", "which", "who", "with", "does", "do", "after", "when", "where", "why", "this", "that",
     "there", "their"]
)


def terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


@dataclass(frozen=True)
class Document:
    id: str
    name: str
    description: str
    text: str

    @property
    def link(self) -> str:
        return f"/docs/{self.id}/"


class Corpus:
    def __init__(self, directory: Path = CORPUS_DIR):
        self.docs: list[Document] = []
        for path in sorted(directory.glob("*.md")):
            lines = path.read_text().strip().splitlines()
            name = lines[0].lstrip("# ").strip()
            body = " ".join(line.strip() for line in lines[1:] if line.strip())
            first = body.split(". ")[0].rstrip(".") + "."
            self.docs.append(Document(path.stem, name, first, body))
        self._tf = [Counter(terms(d.name + " " + d.text)) for d in self.docs]
        df = Counter(t for tf in self._tf for t in tf)
        n = len(self.docs)
        self._idf = {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}

    def search(self, query: str, limit: int = 3) -> list[tuple[Document, float]]:
        q = terms(query)
        scored = []
        for doc, tf in zip(self.docs, self._tf, strict=True):
            score = sum(self._idf.get(t, 0.0) * (1 + math.log(tf[t])) for t in q if tf[t])
            if score > 0:
                scored.append((doc, round(score, 4)))
        scored.sort(key=lambda pair: (-pair[1], pair[0].id))
        return scored[:limit]


def answer_tokens(query: str, sources: list[Document], count: int) -> list[str]:
    """The answer as a list of ``count`` tokens (words with their spacing)."""
    if sources:
        words = (" ".join(d.text for d in sources)).split()
    else:
        words = ("I have no document about " + " ".join(query.split()[:20]) + ".").split()
    if not words:
        words = ["(empty)"]
    out = [(w if i == 0 else " " + w) for i, w in enumerate(words[:count])]
    while len(out) < count:  # repeat the sentence rather than pad with nothing
        out.append(" " + words[len(out) % len(words)])
    return out
