"""After a pabot run: the measuring suites' files where a sequential run leaves them.

Under pabot every suite's process writes into ``<outputdir>/pabot_results/<N>/``, so KG-5's
``performance/summary.json`` and its saved ``baselines/*.json`` are split over those folders.
``./qa run`` calls this after pabot: the summaries are merged into ``<outputdir>/performance/summary.json``
and the baselines copied to ``<outputdir>/baselines/`` (the README's places, and the folder to keep and
pass back as ``BASELINE_REFERENCE_DIR``).

    python -m xnai_qa.artifacts results
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

SECTIONS = ("profiles", "baselines", "comparisons")


def merge_summaries(summaries: list[dict]) -> dict:
    """One summary from several processes' summaries: sections united, the run's first start and last update."""
    merged: dict = {section: {} for section in SECTIONS}
    merged["capacity"] = None
    for summary in summaries:
        for section in SECTIONS:
            merged[section].update(summary.get(section) or {})
        if summary.get("capacity") is not None:
            merged["capacity"] = summary["capacity"]
        for key, pick in (("started_at", min), ("updated_at", max)):
            if summary.get(key) is not None:
                merged[key] = pick(merged.get(key, summary[key]), summary[key])
    return merged


def collect(outdir: Path) -> list[str]:
    """Merges and copies what the pabot processes under ``outdir`` left; returns what it wrote."""
    processes = sorted((outdir / "pabot_results").glob("*/"))
    written = []
    summaries = []
    for folder in processes:
        path = folder / "performance" / "summary.json"
        if path.is_file():
            try:
                summaries.append(json.loads(path.read_text()))
            except ValueError as err:
                raise SystemExit(f"{path} is not valid JSON ({err}); the run that wrote it was cut short?") from None
    if summaries:
        target = outdir / "performance" / "summary.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(merge_summaries(summaries), indent=2, default=str))
        written.append(str(target))
    baselines = [path for folder in processes for path in (folder / "baselines").glob("*.json")]
    newest: dict[str, Path] = {}
    for path in baselines:  # the same baseline saved by two processes: the later one wins
        if path.name not in newest or path.stat().st_mtime > newest[path.name].stat().st_mtime:
            newest[path.name] = path
    for name, path in sorted(newest.items()):
        target = outdir / "baselines" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        written.append(str(target))
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m xnai_qa.artifacts <pabot output folder>", file=sys.stderr)  # noqa: T201 - its CLI
        return 2
    for line in collect(Path(argv[0])):
        print(f"collected {line}")  # noqa: T201 - its CLI
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
