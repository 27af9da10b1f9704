"""``./qa defects``: every defect switch of the testbed, what it breaks, and the tests that catch it.

The switches are the testbed's (``testbed/defects.py``); the tests that catch each are the suites'
``catches:<switch>`` tags (``xnai_qa.claims``).  This listing joins the two, so the testbed itself
reads nothing of the suites (``python -m testbed defects`` lists the switches alone).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from xnai_qa import claims  # noqa: PLC0415 - after the path is set

    from testbed.defects import DEFECTS  # noqa: PLC0415

    claimed = claims.read()
    for d in DEFECTS.values():
        tests = claimed.get(d.name) or ("(no test claims it)",)
        print(f"{d.name}\n    breaks:    {d.breaks}\n    caught by: " + "\n               ".join(tests))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
