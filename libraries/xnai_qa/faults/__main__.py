"""``python -m xnai_qa.faults list|heal LEDGER``: show or undo faults left by killed runs."""

from __future__ import annotations

import argparse
import json
import sys

from xnai_contract.ledger import Ledger

from .backends import FaultError, perform_undo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xnai_qa.faults", description=__doc__)
    parser.add_argument("command", choices=["list", "heal"])
    parser.add_argument("ledger", help="the ledger file (testbed: .testbed/run-<port>/fault-ledger.jsonl)")
    args = parser.parse_args(argv)
    ledger = Ledger(args.ledger)
    if args.command == "list":
        for record in ledger.pending():
            print(json.dumps({k: record[k] for k in ("id", "service", "kind", "detail", "pid")}))
        return 0
    try:
        for record, outcome in ledger.heal(perform_undo, only_pid_not_alive=True):
            print(f"healed {record['id']} ({record['kind']} on {record['service']}): {outcome}")
    except FaultError as err:
        print(f"heal: {err}", file=sys.stderr)
        return 2
    ledger.compact()
    return 0


if __name__ == "__main__":
    sys.exit(main())
