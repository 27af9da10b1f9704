"""Fault injection: backends (testbed processes, Docker, fault proxy); the rollback ledger's format is
``xnai_contract.ledger`` (the testbed lists its open entries too)."""

from __future__ import annotations

import os

from xnai_contract.ledger import Ledger

from .backends import perform_undo


def heal_ledger(path: str | os.PathLike) -> list[str]:
    """Undo what killed runs left in the ledger at ``path``; one line per healed fault."""
    ledger = Ledger(path)
    lines = [f"{record['id']} ({record['kind']} on {record['service']}): {outcome}"
             for record, outcome in ledger.heal(perform_undo, only_pid_not_alive=True)]
    ledger.compact()
    return lines
