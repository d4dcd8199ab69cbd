#!/usr/bin/env python3
"""What a warm child of a problem still compiles after replaying its compile profile (a diagnostic).

    .venv/bin/python scripts/compile-misses.py nnx-vmap-ensemble [more problems] [--data-dir .gradax]
        [--all-programs]

For each problem: its profile (recorded in the data dir if it is not there yet, as `gradax prepare` does), then
a fresh process (`python -m graders.compile_profile misses`) that replays it exactly as a warm child does (with
the grading XLA flags, which enter every persistent-cache key) and runs the reference with the probes a submission
is graded with, logging every program jax compiles after the replay and how many of those the replay cache served
(the profile's extra entries: programs the known mistakes and alternatives run). Each one compiled for real is
time a student waits for at grading time (~10-80 ms each); none is the goal for the reference
(tests/test_compile_profile.py holds three problems to it). `--all-programs` also runs each known mistake and
alternative, as submissions written like them are.

Trusted, unsandboxed, and it runs only the problem's instructor code. The replay reads a copy of the problem's
programs from the replay cache: what that code compiles here must never reach the cache warm children read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    from graders.cases import build_cases
    from graders.compile_profile import ProfileCache, misses_after_replay
    from graders.problem import ProblemBank

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problems", nargs="+")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".gradax")
    parser.add_argument("--problems-dir", type=Path, default=ROOT / "problems")
    parser.add_argument("--all-programs", action="store_true",
                        help="also each known mistake and alternative, not only the reference")
    args = parser.parse_args()
    bank = ProblemBank(args.problems_dir)
    profiles = ProfileCache(args.data_dir / "cache")
    worst = 0
    for problem_id in args.problems:
        loaded = bank.get(problem_id)
        if loaded is None:
            print(f"{problem_id}: no such problem in {args.problems_dir}", file=sys.stderr)
            return 2
        entries = profiles.get(loaded, build_cases(loaded.problem))
        stored = json.loads(profiles.path(loaded).read_text())  # this version's profile, with its replay keys
        programs = [("the reference", loaded.reference_source.decode())]
        if args.all_programs:
            programs += [(f"known mistake {m.id}", m.code) for m in loaded.problem.known_mistakes]
            programs += [(f"alternative {a.id}", a.code) for a in loaded.problem.alternatives]
        print(f"{problem_id}: {len(entries)} entries replayed, {len(stored.get('extra', []))} extra in the cache")
        for name, code in programs:
            try:
                result = misses_after_replay(loaded, code, entries, profiles.jax_cache_dir,
                                             keys=stored.get("replay_keys", []))
            except RuntimeError as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                return 2
            misses = result["misses"]
            if name == "the reference":
                worst = max(worst, len(misses) - result["from_cache"])
            print(f"  {name} ran {result['run_ms']} ms ({result['run_cpu_ms']} CPU-ms) after the replay "
                  f"({result['replayed']}) and compiled {len(misses)} programs, {result['from_cache']} of them "
                  "from the replay cache")
            for miss in misses:
                print(f"    {miss}")
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main())
