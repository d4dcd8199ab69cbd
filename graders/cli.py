"""The `gradax` command line.

Engine commands live here (`grade`, `check`, `new`, `prepare`, `bench`). Commands that need the web app
(`serve`, `worker`, `user`) are registered by the app through the `gradax.commands` entry point group,
so this package never imports the web app.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from graders.engine import Grader
from graders.executor import make_executor
from graders.problem import ProblemBank, ProblemError, load_problem
from graders.report import to_junit
from graders.settings import get_settings

EXIT_ACCEPTED, EXIT_REJECTED, EXIT_UNGRADABLE = 0, 1, 2


def cmd_grade(args: argparse.Namespace) -> int:
    settings = get_settings()
    problems_dir = Path(args.problems) if args.problems else settings.problems_dir
    bank = ProblemBank(problems_dir)
    loaded = bank.get(args.problem_id)
    if loaded is None:
        broken = [str(p) for p in bank.errors if p.stem == args.problem_id]
        reason = f" (its file is invalid: {broken[0]})" if broken else ""
        print(f"gradax grade: unknown problem {args.problem_id!r}{reason}", file=sys.stderr)
        return EXIT_UNGRADABLE
    try:
        code = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"gradax grade: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_UNGRADABLE
    # One file: a fresh sandboxed Python (cold start) unless GRADAX_POOL=warm is set explicitly (the setting's
    # default, warm, is the server's), which starts a zygote and one child for this single grade (used to run
    # attack tests through it).
    explicit_warm = "pool" in settings.model_fields_set and settings.pool == "warm"
    grader = Grader(bank, settings, executor=make_executor(settings, pool="warm" if explicit_warm else "cold"))
    try:
        report = grader.grade_loaded(loaded, code, mode="run" if args.public_only else "submit")
    finally:
        grader.executor.close()
    args.executor_name = type(grader.executor).__name__
    health = grader.executor.health()
    if health.kind == "warm" and health.runs is not None:  # say whether it graded, or fell back and why
        if health.runs.get("warm"):
            print("gradax grade: graded by the warm pool", file=sys.stderr)
        elif health.runs.get("cold"):
            args.executor_name = "ColdExecutor"
            print(f"gradax grade: the warm pool was unavailable ({health.failure}); "
                  "graded with a cold start", file=sys.stderr)
    if args.junit:
        Path(args.junit).write_text(to_junit(report))
    if args.json:
        print(json.dumps(report.to_json_dict(), indent=2))
    else:
        print_human(report, verbose=args.verbose, executor=getattr(args, "executor_name", "ColdExecutor"))
    if report.verdict == "internal_error":
        return EXIT_UNGRADABLE
    return EXIT_ACCEPTED if report.accepted else EXIT_REJECTED


def _continued(text: str, indent: str) -> str:
    """`text` with every line after the first indented: only gradax's own lines start at the margin, so a message
    the submission wrote cannot pass for a verdict line (its control characters are already escaped: shown_text)."""
    return text.replace("\n", "\n" + indent)


def print_human(report: object, verbose: bool = False, executor: str = "ColdExecutor") -> None:
    from graders.report import Report

    assert isinstance(report, Report)
    print(f"{report.problem}: {report.verdict.value}  ({report.passed}/{report.total} tests, "
          f"{report.duration_ms:.0f} ms)")
    if report.message:
        print(_continued(report.message, "  "))
    detail = " " * 9
    for t in report.tests:
        mark = {"passed": "ok ", "failed": "FAIL", "error": "ERR ", "timeout": "TIME", "skipped": "skip"}[t.status]
        vis = "public" if t.public else "hidden"
        print(f"  [{mark}] {t.name} ({vis}){': ' + _continued(t.message, detail) if t.status != 'passed' else ''}")
        if t.expected is not None:
            print(f"{detail}expected: {_continued(t.expected, detail)}")
            print(f"{detail}got:      {_continued(t.got or '', detail)}")
        if t.traceback and t.public:
            print(detail + _continued(t.traceback, detail))
    if report.diagnosis:
        print(f"Diagnosis: {_continued(report.diagnosis, '  ')}")
    if report.timing:
        print(f"Timing: {report.timing}")
    if report.stdout:
        print("--- stdout ---\n" + report.stdout)
    if verbose:
        print("timings: " + ", ".join(f"{k}={v}" for k, v in report.timings.items())
              + ("  (warm pool: a pre-forked child graded this run)" if executor == "WarmPool"
                 else "  (cold start: a fresh sandboxed Python imported jax for this run)"))


def cmd_check(args: argparse.Namespace) -> int:
    from graders.check import check_paths
    from graders.course import check_course_paths, is_course_path

    settings = get_settings()
    paths = [Path(p) for p in args.paths] or [settings.problems_dir, settings.courses_dir]
    start = time.monotonic()
    course_paths = [p for p in paths if p.exists() and is_course_path(p)]
    problem_paths = [p for p in paths if p not in course_paths]
    results = check_paths(problem_paths, settings) if problem_paths else []
    failed = 0
    if course_paths:  # assignment files may only name problems that exist
        known = {p.stem for p in settings.problems_dir.glob("*.yaml")}
        for course in check_course_paths(course_paths, known):
            print(f"{'ok' if course.ok else 'FAILED':6} {course.path}")
            for line in course.errors:
                print(f"       {line}")
            failed += not course.ok
    for result in results:
        status = "ok" if result.ok else "FAILED"
        print(f"{status:6} {result.path} ({result.duration_s:.1f} s)")
        for line in result.errors:
            print(f"       {line}")
        for stage, mistake in sorted(result.proofs.items()):
            print(f"       the {stage} check rejects known mistake {mistake!r}, whose outputs pass")
        for line in result.warnings:
            print(f"       warning: {line}")
        failed += not result.ok
    if results or not course_paths:
        print(f"{sum(r.ok for r in results)} of {len(results)} problems ok in {time.monotonic() - start:.1f} s")
    return 1 if failed or not (results or course_paths) else 0


def cmd_new(args: argparse.Namespace) -> int:
    from graders.scaffold import scaffold

    settings = get_settings()
    problems_dir = Path(args.problems) if args.problems else settings.problems_dir
    try:
        created = scaffold(args.problem_id, problems_dir, function=args.function)
    except (FileExistsError, ValueError) as exc:
        print(f"gradax new: {exc}", file=sys.stderr)
        return 2
    for path in created:
        print(f"created {path}")
    return 0


def line_printer() -> Callable[[str], None]:
    """`print` for several threads, each line whole: print writes a line and its newline in two calls, and two
    preparations that ended together printed "cached    prep-a (2.1 s)cached    prep-b (2.1 s)", then an empty line."""
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            print(line, flush=True)

    return say


def cmd_prepare(args: argparse.Namespace) -> int:
    from graders.prepare import ProblemPrepared, UnknownProblems, format_line, format_summary, prepare

    settings = get_settings()
    problems_dir = Path(args.problems) if args.problems else settings.problems_dir
    bank = ProblemBank(problems_dir)
    if not args.problem_ids:
        for path, error in sorted(bank.errors.items()):  # skipped, but not silently
            print(f"skipped   {path.stem}: its file is invalid: {str(error).splitlines()[0]}", file=sys.stderr)

    say = line_printer()

    def progress(done: ProblemPrepared) -> None:  # called from the preparing threads
        say(format_line(done))

    try:
        result = prepare(bank, args.problem_ids or None, settings, workers=args.workers, on_progress=progress)
    except UnknownProblems as exc:
        print(f"gradax prepare: {exc} (problems in {problems_dir}: {', '.join(sorted(bank.problems)) or 'none'})",
              file=sys.stderr)
        return EXIT_UNGRADABLE
    print(format_summary(result))
    if args.prune:
        from graders.prune import prune_cache

        print(prune_cache(bank, settings, trusted_days=args.trusted_days).summary())
    return 0 if result.ok else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from graders.bench import run_bench

    return run_bench(args)


def _plugin_commands() -> dict[str, Callable[..., None]]:
    found = {}
    for ep in importlib.metadata.entry_points(group="gradax.commands"):
        found[ep.name] = ep.load()
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradax", description="Graded exercises for JAX and Flax NNX.")
    parser.add_argument("--log-level", default="WARNING")
    sub = parser.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grade", help="grade one file with the server's engine and sandbox")
    g.add_argument("problem_id")
    g.add_argument("file")
    g.add_argument("--json", action="store_true", help="print the report as JSON and nothing else")
    g.add_argument("--junit", metavar="PATH", help="also write a JUnit XML report")
    g.add_argument("--public-only", action="store_true", help="run the public tests only (like Run)")
    g.add_argument("--problems", help="problems directory (default: GRADAX_PROBLEMS_DIR or ./problems)")
    g.add_argument("--verbose", "-v", action="store_true", help="print timings")
    g.set_defaults(func=cmd_grade)

    c = sub.add_parser("check", help="validate problem files against their reference solutions")
    c.add_argument("paths", nargs="*", help="problem files or directories (default: the problem bank)")
    c.set_defaults(func=cmd_check)

    n = sub.add_parser("new", help="scaffold a problem and its reference solution")
    n.add_argument("problem_id")
    n.add_argument("--function", help="function name (default: derived from the id)")
    n.add_argument("--problems", help="problems directory")
    n.set_defaults(func=cmd_new)

    p = sub.add_parser("prepare", help="compute and cache what each problem needs before students arrive "
                                       "(reference and known-mistake outputs, compile profiles)")
    p.add_argument("problem_ids", nargs="*", metavar="PROBLEM", help="problem ids (default: the whole bank)")
    p.add_argument("--problems", help="problems directory (default: GRADAX_PROBLEMS_DIR or ./problems)")
    p.add_argument("--workers", type=int, default=None, help="problems prepared at once (default: the cores)")
    p.add_argument("--prune", action="store_true",
                   help="then remove from the cache what no current version of any problem uses (old versions' "
                        "outputs and profiles, replay programs no profile lists, trusted programs unused lately)")
    p.add_argument("--trusted-days", type=float, default=30.0,
                   help="with --prune: keep trusted programs used within this many days (default: 30)")
    p.set_defaults(func=cmd_prepare)

    b = sub.add_parser("bench", help="benchmark grading latency and throughput")
    b.add_argument("--submissions", type=int, default=20)
    b.add_argument("--concurrency", type=int, default=4)
    b.add_argument("--naive", type=int, default=5, help="submissions through the fresh-python path")
    b.add_argument("--json", action="store_true")
    from graders.bench import add_arguments as add_bench_arguments

    add_bench_arguments(b)
    b.set_defaults(func=cmd_bench)

    for _name, register in sorted(_plugin_commands().items()):
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code = args.func(args)
    except ProblemError as exc:
        print(str(exc), file=sys.stderr)
        code = 2
    sys.exit(code)


__all__ = ["build_parser", "load_problem", "main"]
