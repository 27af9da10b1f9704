"""Background load for the timing benchmarks: one process busy ``--share`` of one core.

    .venv/bin/python bench/busy.py --share 0.5 --seconds 1800

It spins for ``share`` of every 100 ms and sleeps the rest, until ``--seconds`` have passed (bounded:
it always stops by itself), so a run beside it sees a machine with that much less CPU.  Used by
``bench/flakiness.py --background-load`` and to try ``bash .ci/run`` on a busier machine.
"""

from __future__ import annotations

import argparse
import time

PERIOD_S = 0.1


def busy(share: float, seconds: float) -> None:
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        spin_until = now + share * PERIOD_S
        while time.monotonic() < spin_until:
            pass
        time.sleep(max(0.0, PERIOD_S * (1 - share)))  # the idle part of the duty cycle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", type=float, default=0.5, help="fraction of one core to keep busy (0..1)")
    parser.add_argument("--seconds", type=float, default=1800, help="stop after this long")
    args = parser.parse_args()
    if not 0 < args.share <= 1 or not 0 < args.seconds <= 24 * 3600:
        parser.error("--share must be in (0, 1] and --seconds in (0, 86400]")
    busy(args.share, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
