"""`gradax bench --bank`: every problem of the bank through the warm pool, and a mixed-bank throughput.

For each problem, its reference solution (a correct answer written the way the instructor would) is graded
- first: right after `prepare`, by a pool that was offered every prepared problem, as a server's is (a spare
  child of each, up to `pool_spares`; a problem beyond them borrows a child warmed for another): what the first
  student of a problem meets after a server start;
- warm: N times, each once a child warmed for the problem is ready (the pool refills between them), p50/p95;
  beside it the CPU a child spent warming up (fork, backend start, profile replay) and the CPU of the run
  itself, and the compile share of the run where the submission compiled (jits) functions of its own;
- its first known mistake, warm, N times too: a wrong answer is most of what students send, and it runs other
  operations than the reference (graders/compile_profile.py: the profile's extra entries); then N times more,
  each once the child has also settled (used no CPU for a moment: it replayed those extra entries while it
  waited, as a child does on a server that is not busy), with the CPU a child spent that way;
then all problems mixed, `concurrency` at a time, for a sustained graded/s figure.

The JSON (`--out`, kept in docs/bench/) carries the machine's load and cores; `--compare` prints each
problem's change against an earlier JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

TARGET_FIRST_P50_MS = 300.0
TARGET_THROUGHPUT = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bank", action="store_true", help="every problem of the bank (per-problem table and a "
                                                            "mixed-bank throughput) instead of one problem")
    parser.add_argument("--only", nargs="*", metavar="PROBLEM", help="with --bank: only these problems")
    parser.add_argument("--warm-n", type=int, default=5, help="with --bank: warm submissions per problem")
    parser.add_argument("--mixed", type=int, default=0,
                        help="with --bank: submissions in the mixed phase (default: 2 per problem)")
    parser.add_argument("--out", help="with --bank: write the JSON here (e.g. docs/bench/bank.json)")
    parser.add_argument("--compare", help="with --bank: an earlier JSON to compare each problem against")


def _pct(values: list[float], q: float) -> float | None:
    from graders.bench import percentile

    found = percentile(values, q)
    return round(found, 1) if found is not None else None


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_bank(args: argparse.Namespace) -> int:
    from graders.engine import Grader
    from graders.executor import make_executor
    from graders.pool import WarmPool
    from graders.prepare import UnknownProblems, prepare
    from graders.problem import ProblemBank
    from graders.settings import get_settings

    settings = get_settings()
    bank = ProblemBank(settings.problems_dir)
    try:
        result = prepare(bank, args.only or None, settings)
    except UnknownProblems as exc:
        print(f"gradax bench: {exc}", file=sys.stderr)
        return 2
    if not result.ok:
        print("gradax bench: some problems could not be prepared: "
              + ", ".join(f"{p.id} ({p.error})" for p in result.problems if p.status == "failed"), file=sys.stderr)
        return 2
    ids = [p.id for p in result.problems]
    executor = make_executor(settings)
    if not isinstance(executor, WarmPool):
        print(f"gradax bench: the warm pool is off or unavailable here ({type(executor).__name__})", file=sys.stderr)
        return 2
    pool = executor
    grader = Grader(bank, settings, executor=pool)
    out: dict[str, Any] = {
        "kind": "bank", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cores": os.cpu_count(),
        "load_before": _load(), "pool": {"size": pool.settings.pool_children(), "prefork": pool.settings.pool_prefork},
        "prepare_s": round(result.duration_s, 1), "problems": {},
    }
    try:
        pool.start()
        # What a running server has after its preparation: every prepared problem offered to the pool, in
        # curriculum order, which keeps a spare child of each (up to pool_spares); waited for, untimed.
        loaded_all = [bank.get(problem_id) for problem_id in ids]
        for loaded in loaded_all:
            assert loaded is not None
            pool.stock(loaded, grader.limits_for(loaded))
        spared = loaded_all[:pool.settings.spare_children()]
        if not spared:  # no spares (GRADAX_POOL_SPARES=0): the zygote up and one child, what a running server has
            assert loaded_all[0] is not None
            pool.prewarm(loaded_all[0], grader.limits_for(loaded_all[0]))
        for loaded in spared or loaded_all[:1]:
            assert loaded is not None
            if not pool.wait_ready(loaded, 1, timeout=300):
                print(f"gradax bench: the warm pool did not start: {pool.failure}", file=sys.stderr)
                return 2
        out["pool"]["spares"] = len(spared)
        out["pool"]["memory_mb_with_spares"] = round(pool.memory_bytes() / 2**20)
        for problem_id in ids:
            out["problems"][problem_id] = _one_problem(grader, pool, problem_id, args.warm_n)
            _print_row(problem_id, out["problems"][problem_id])
        out["mixed"] = _mixed(grader, ids, args.mixed or 2 * len(ids), args.concurrency)
        out["load_after"] = _load()
        out["pool"]["stats"] = dict(pool.stats)
    finally:
        pool.close()
    _summarise(out)
    if args.compare:
        _compare(out, json.loads(Path(args.compare).read_text()))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.out}")
    if args.json:
        print(json.dumps(out, indent=1))
    return 0 if out["verdicts_ok"] else 1


def _reference_code(grader: Any, problem_id: str) -> str:
    loaded = grader.bank.get(problem_id)
    return str(loaded.reference_source.decode("utf-8"))


def _one_problem(grader: Any, pool: Any, problem_id: str, warm_n: int) -> dict[str, Any]:
    loaded = grader.bank.get(problem_id)
    code = _reference_code(grader, problem_id)
    verdicts: dict[str, int] = {}
    start = time.perf_counter()
    first_report = grader.grade_loaded(loaded, code)
    first_ms = (time.perf_counter() - start) * 1000
    verdicts[first_report.verdict.value] = 1
    warmup_before = pool.warm_cpu_snapshot()
    warm = _warm_runs(grader, pool, loaded, code, warm_n, verdicts)
    warmup_after = pool.warm_cpu_snapshot()
    row: dict[str, Any] = {
        "first_ms": round(first_ms, 1), "first_timings": {k: first_report.timings.get(k) for k in ("run_ms",
                                                                                                  "startup_ms")},
        "warm_p50_ms": _pct(warm["ms"], 50), "warm_p95_ms": _pct(warm["ms"], 95), "warm_n": len(warm["ms"]),
        "run_p50_ms": _pct(warm["run_ms"], 50),
        "run_cpu_p50_s": round(statistics.median(warm["cpu_s"]), 3) if warm["cpu_s"] else None,
        "warmup_cpu_per_child_s": _per_run(warmup_before, warmup_after),
        "verdicts": verdicts,
    }
    if warm["compile_ms"]:
        row["compile_p50_ms"] = _pct(warm["compile_ms"], 50)
    if loaded.problem.known_mistakes:
        # A wrong answer too (most of what students send): the problem's first known mistake, as warm.
        mistake = loaded.problem.known_mistakes[0]
        mistake_verdicts: dict[str, int] = {}
        wrong = _warm_runs(grader, pool, loaded, mistake.code, warm_n, mistake_verdicts)
        waiting_before = pool.waiting_cpu_snapshot()
        settled = _warm_runs(grader, pool, loaded, mistake.code, warm_n, mistake_verdicts, settled=True)
        waiting_after = pool.waiting_cpu_snapshot()
        row["mistake"] = {
            "id": mistake.id, "warm_p50_ms": _pct(wrong["ms"], 50), "warm_p95_ms": _pct(wrong["ms"], 95),
            "run_cpu_p50_s": round(statistics.median(wrong["cpu_s"]), 3) if wrong["cpu_s"] else None,
            "settled_p50_ms": _pct(settled["ms"], 50), "settled_p95_ms": _pct(settled["ms"], 95),
            "settled_run_cpu_p50_s": round(statistics.median(settled["cpu_s"]), 3) if settled["cpu_s"] else None,
            "waiting_cpu_per_child_s": _per_run(waiting_before, waiting_after),
            "verdicts": mistake_verdicts,
        }
    return row


def _per_run(before: tuple[float, int], after: tuple[float, int]) -> float | None:
    """CPU seconds per child (or run) between two (CPU seconds, count) snapshots of the pool."""
    runs = after[1] - before[1]
    return round((after[0] - before[0]) / runs, 3) if runs > 0 else None


def _warm_runs(grader: Any, pool: Any, loaded: Any, code: str, n: int,
               verdicts: dict[str, int], settled: bool = False) -> dict[str, list[float]]:
    """`code` graded `n` times, each once a child warmed for the problem is ready (the pool refills between them),
    with `settled` once that child has also used no CPU for a moment (it replayed what a ready child replays while
    it waits, as a student's next submission finds it on a server that is not busy): latencies, run CPU, run time
    and compile time (where the submission compiled functions of its own)."""
    out: dict[str, list[float]] = {"ms": [], "cpu_s": [], "run_ms": [], "compile_ms": []}
    for _ in range(n):
        # Untimed: a child for this problem is ready, as on a warm server.
        if settled:
            pool.wait_settled(loaded, timeout=120)
        else:
            pool.wait_ready(loaded, 1, timeout=120)
        start = time.perf_counter()
        report = grader.grade_loaded(loaded, code)
        out["ms"].append((time.perf_counter() - start) * 1000)
        verdicts[report.verdict.value] = verdicts.get(report.verdict.value, 0) + 1
        if report.usage is not None:
            out["cpu_s"].append(report.usage.cpu_s)
        out["run_ms"].append(report.timings.get("run_ms", 0.0))
        if "compile_ms" in report.timings:
            out["compile_ms"].append(report.timings["compile_ms"])
    return out


def _mixed(grader: Any, ids: list[str], total: int, concurrency: int) -> dict[str, Any]:
    """All problems at once, round robin, `concurrency` in flight: sustained graded/s over the mix."""
    order = list(itertools.islice(itertools.cycle(ids), total))
    codes = {i: _reference_code(grader, i) for i in ids}
    latencies: list[float] = []
    verdicts: dict[str, int] = {}

    def one(problem_id: str) -> None:
        start = time.perf_counter()
        report = grader.grade(problem_id, codes[problem_id])
        latencies.append((time.perf_counter() - start) * 1000)
        verdicts[report.verdict.value] = verdicts.get(report.verdict.value, 0) + 1

    load = _load()
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as executor:
        list(executor.map(one, order))
    elapsed = time.perf_counter() - start
    return {"n": total, "concurrency": concurrency, "elapsed_s": round(elapsed, 1),
            "graded_per_s": round(total / elapsed, 2) if elapsed > 0 else None,
            "p50_ms": _pct(latencies, 50), "p95_ms": _pct(latencies, 95), "verdicts": verdicts,
            "load_before": load}


def _print_row(problem_id: str, row: dict[str, Any]) -> None:
    def f(value: Any) -> str:
        return "-" if value is None else f"{value:.0f}" if isinstance(value, float) else str(value)

    compile_part = f"  compile {f(row['compile_p50_ms'])} ms" if "compile_p50_ms" in row else ""
    print(f"{problem_id:28} first {f(row['first_ms']):>6} ms  warm p50 {f(row['warm_p50_ms']):>5} "
          f"p95 {f(row['warm_p95_ms']):>5} ms  run cpu {row['run_cpu_p50_s']} s  "
          f"warm-up cpu/child {row['warmup_cpu_per_child_s']} s{compile_part}  {row['verdicts']}", flush=True)
    if "mistake" in row:
        wrong = row["mistake"]
        print(f"{'':28} known mistake {wrong['id']}: warm p50 {f(wrong['warm_p50_ms'])} p95 "
              f"{f(wrong['warm_p95_ms'])} ms  run cpu {wrong['run_cpu_p50_s']} s; settled p50 "
              f"{f(wrong['settled_p50_ms'])} p95 {f(wrong['settled_p95_ms'])} ms  run cpu "
              f"{wrong['settled_run_cpu_p50_s']} s  cpu while waiting/child {wrong['waiting_cpu_per_child_s']} s  "
              f"{wrong['verdicts']}", flush=True)


def _summarise(out: dict[str, Any]) -> None:
    rows = out["problems"]
    firsts = [r["first_ms"] for r in rows.values()]
    warm = [r["warm_p50_ms"] for r in rows.values() if r["warm_p50_ms"] is not None]
    wrong = [r["mistake"]["warm_p50_ms"] for r in rows.values()
             if "mistake" in r and r["mistake"]["warm_p50_ms"] is not None]
    settled = [r["mistake"]["settled_p50_ms"] for r in rows.values()
               if "mistake" in r and r["mistake"].get("settled_p50_ms") is not None]
    mixed = out.get("mixed") or {}
    out["summary"] = {
        "first_p50_ms": _pct(firsts, 50), "first_max_ms": max(firsts) if firsts else None,
        "warm_p50_of_p50s_ms": _pct(warm, 50), "warm_max_p50_ms": max(warm) if warm else None,
        "mistake_warm_p50_of_p50s_ms": _pct(wrong, 50), "mistake_warm_max_p50_ms": max(wrong) if wrong else None,
        "mistake_settled_p50_of_p50s_ms": _pct(settled, 50),
        "mistake_settled_max_p50_ms": max(settled) if settled else None,
        "mixed_graded_per_s": mixed.get("graded_per_s"),
        "targets": {
            "first_p50_ms": {"target": f"< {TARGET_FIRST_P50_MS}", "measured": _pct(firsts, 50),
                             "met": bool(firsts) and (_pct(firsts, 50) or 0) < TARGET_FIRST_P50_MS},
            "mixed_graded_per_s": {"target": f">= {TARGET_THROUGHPUT}", "measured": mixed.get("graded_per_s"),
                                   "met": (mixed.get("graded_per_s") or 0) >= TARGET_THROUGHPUT},
        },
    }
    expected = {"accepted"}
    # A known mistake must be rejected, and for what it did (not a limit, not gradax failing).
    rejected = {"wrong_answer", "runtime_error", "invalid_submission"}
    out["verdicts_ok"] = (all(set(r["verdicts"]) <= expected for r in rows.values())
                          and all(set(r["mistake"]["verdicts"]) <= rejected for r in rows.values() if "mistake" in r)
                          and set(mixed.get("verdicts", {})) <= expected)
    s = out["summary"]
    print(f"bank: {len(rows)} problems, load {out['load_before']} -> {out.get('load_after')} on {out['cores']} cores")
    print(f"first submission after prepare: p50 {s['first_p50_ms']} ms, max {s['first_max_ms']} ms "
          f"(target p50 < {TARGET_FIRST_P50_MS:.0f})")
    print(f"warm p50 across problems: median {s['warm_p50_of_p50s_ms']} ms, max {s['warm_max_p50_ms']} ms")
    if wrong:
        print(f"a known mistake, warm p50 across problems: median {s['mistake_warm_p50_of_p50s_ms']} ms, "
              f"max {s['mistake_warm_max_p50_ms']} ms; once its child settled: median "
              f"{s['mistake_settled_p50_of_p50s_ms']} ms, max {s['mistake_settled_max_p50_ms']} ms")
    print(f"mixed bank: {mixed.get('graded_per_s')} graded/s ({mixed.get('n')} submissions, "
          f"{mixed.get('concurrency')} at once; target >= {TARGET_THROUGHPUT:.0f})")
    if not out["verdicts_ok"]:
        print("some references were not accepted or some known mistakes not rejected: see the verdicts above")


def _compare(out: dict[str, Any], before: dict[str, Any]) -> None:
    print(f"against {before.get('date')} (load {before.get('load_before')}):")
    for problem_id, row in out["problems"].items():
        old = (before.get("problems") or {}).get(problem_id)
        if not old:
            print(f"  {problem_id:28} new")
            continue
        parts = []
        pairs = [(key, old.get(key), row.get(key))
                 for key in ("first_ms", "warm_p50_ms", "warm_p95_ms", "warmup_cpu_per_child_s")]
        for key in ("warm_p50_ms", "settled_p50_ms"):
            pairs.append((f"mistake_{key}", (old.get("mistake") or {}).get(key), (row.get("mistake") or {}).get(key)))
        for key, a, b in pairs:
            if a and b is not None:
                parts.append(f"{key} {a} -> {b} ({(b - a) / a * 100:+.0f} %)")
        print(f"  {problem_id:28} " + "; ".join(parts))
    a, b = (before.get("mixed") or {}).get("graded_per_s"), (out.get("mixed") or {}).get("graded_per_s")
    print(f"  mixed graded/s {a} -> {b}")
