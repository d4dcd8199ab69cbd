#!/usr/bin/env python3
"""Write tests/durations.json (seconds per test, by module) from a JUnit XML file of a full run.

    .venv/bin/python -m pytest -n 3 --dist loadgroup -m "not container" --junitxml=/tmp/run.xml
    python3 scripts/test-durations.py /tmp/run.xml [--load 12]

tests/scheduling.py reads it to start the longest units first; only the ratios matter, so a run on a busy
machine serves (say how busy with --load). Modules missing from the run keep their old figure.
"""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "durations.json"


def module_path(classname: str) -> str | None:
    """`tests.api.test_grading` (or `tests.api.test_grading.SomeClass`) -> `tests/api/test_grading.py`."""
    parts = classname.split(".")
    while parts:
        candidate = "/".join(parts) + ".py"
        if (ROOT / candidate).is_file():
            return candidate
        parts.pop()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("junit_xml", type=Path)
    parser.add_argument("--load", help="the machine's load average during the run, for the record")
    args = parser.parse_args()
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    tests: dict[str, tuple[str, float]] = {}
    for case in ET.parse(args.junit_xml).getroot().iter("testcase"):
        module = module_path(case.get("classname", ""))
        if module is None:
            continue
        seconds_here = float(case.get("time", 0) or 0)
        totals[module][0] += seconds_here
        totals[module][1] += 1
        # The test id as scheduling sees it, before the `@unit` suffix it adds for xdist's groups.
        tests[f"{module}::{case.get('name', '').split('@')[0]}"] = (module, seconds_here)
    old = json.loads(OUT.read_text()) if OUT.exists() else {}
    seconds = dict(old.get("seconds_per_test", {}))
    seconds.update({m: round(t / n, 2) for m, (t, n) in totals.items() if n})
    # Outliers: a test over a minute and over three times its module's average gets a figure of its own.
    outliers = {test: round(s, 2) for test, (module, s) in tests.items() if s > 60 and s > 3 * seconds[module]}
    OUT.write_text(json.dumps({
        "about": "Seconds per test (setup, call and teardown), by module, from a full run, and by test id for a "
                 "test far longer than its module's average: tests/scheduling.py starts the longest units first. "
                 "Refresh with scripts/test-durations.py.",
        "load": args.load or old.get("load"),
        "seconds_per_test": dict(sorted(seconds.items())),
        "seconds_by_test": dict(sorted(outliers.items())),
    }, indent=1) + "\n")
    print(f"{OUT}: {len(seconds)} modules")


if __name__ == "__main__":
    main()
