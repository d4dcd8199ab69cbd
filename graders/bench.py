"""`gradax bench`: grading latency and throughput, the naive baseline and gradax side by side in one run.

Paths measured on the same correct `nnx-module-basics` submission, in this order:
- naive: a fresh, unsandboxed `python` per submission that imports jax/flax and runs it (the harness
  with no sandbox: the baseline docs/performance.md compares against);
- cold: `Grader.grade` with a fresh sandboxed Python per submission (what `gradax grade` does);
- warm: `Grader.grade` through the warm pool, exactly the executor the server uses
  (`graders.executor.make_executor`), one submission at a time, then N threads at once for throughput;
- http (with `--url`): from `POST /api/v1/submissions` to a `done` verdict against a running server;
- warm_no_model_checks (with `--without-model-checks`): the same submission on a copy of the problem with its
  model checks off, interleaved with the warm path one for one, so both see the same load: the difference is
  what the state and transform checks cost a submission.
Memory is the pool's cgroup usage (zygote + warming/ready children + running children), sampled.
"""

from __future__ import annotations

import argparse
import atexit
import json
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROBLEM = "nnx-module-basics"
SUBMISSION = '''\
import jax
import jax.numpy as jnp
from flax import nnx


class Kernel(nnx.Module):
    def __init__(self, n_in, n_out, *, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (n_in, n_out)) * (1 / jnp.sqrt(n_in)))

    def __call__(self, x):
        return x @ self.kernel[...]


def module_basics_forward(seed, x, features):
    return Kernel(x.shape[-1], int(features), rngs=nnx.Rngs(int(seed)))(x)
'''
TARGET_P50_MS = 150.0
TARGET_RATIO = 10.0
TARGET_THROUGHPUT = 4.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options beyond the ones cli.py declares (--submissions, --concurrency, --naive, --json)."""
    parser.add_argument("--cold", type=int, default=3, help="submissions through the cold sandbox path")
    parser.add_argument("--throughput", type=int, default=0,
                        help="submissions in the concurrent phase (default: 2 x --submissions)")
    parser.add_argument("--problem", default=PROBLEM)
    parser.add_argument("--file", help="submission to grade (default: a correct nnx-module-basics solution)")
    parser.add_argument("--url", help="also measure HTTP submit-to-verdict against this running server")
    parser.add_argument("--token", help="bearer token for --url (default: register a fresh user)")
    parser.add_argument("--http-only", action="store_true", help="measure only the HTTP path")
    parser.add_argument("--without-model-checks", action="store_true",
                        help="also grade, interleaved with the warm path, a copy of the problem with state_checks: "
                             "false and no transform_checks (what the model checks cost)")
    parser.add_argument("--pause", type=float, default=1.0,
                        help="seconds between sequential HTTP submissions (the pool refills meanwhile)")
    from graders.bench_bank import add_arguments as add_bank_arguments

    add_bank_arguments(parser)


class BenchError(Exception):
    """The benchmark cannot go on; the message says why (printed without a traceback)."""


@dataclass
class PathResult:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    verdicts: dict[str, int] = field(default_factory=dict)
    note: str = ""

    # Per-submission timing parts from the reports (e.g. probes_ms: the model's state and checks in the child).
    parts: dict[str, list[float]] = field(default_factory=dict)

    def add(self, ms: float, verdict: str) -> None:
        self.latencies_ms.append(ms)
        self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1

    def add_parts(self, timings: dict[str, float], usage: Any = None) -> None:
        for key in ("probes_ms", "probes_cpu_ms", "model_stages_ms", "run_ms", "compare_ms"):
            if key in timings:
                self.parts.setdefault(key, []).append(timings[key])
        # The run's CPU time (its cgroup's) and its wait for a CPU: on a loaded machine the CPU time moves
        # far less than the wall-clock time, so it shows a small difference between two paths better.
        for key, field_name in (("cpu_ms", "cpu_s"), ("cpu_wait_ms", "cpu_wait_s")):
            value = getattr(usage, field_name, None)
            if value is not None:
                self.parts.setdefault(key, []).append(value * 1000)

    @property
    def p50(self) -> float | None:
        return percentile(self.latencies_ms, 50)

    @property
    def p95(self) -> float | None:
        return percentile(self.latencies_ms, 95)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n": len(self.latencies_ms), "p50_ms": _r(self.p50), "p95_ms": _r(self.p95),
                               "mean_ms": _r(statistics.fmean(self.latencies_ms)) if self.latencies_ms else None,
                               "verdicts": self.verdicts, "note": self.note}
        if self.parts:
            out["parts_p50_ms"] = {k: _r(percentile(v, 50), 2) for k, v in self.parts.items()}
        return out


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no data."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def _r(value: float | None, digits: int = 1) -> float | None:
    return round(value, digits) if value is not None else None


class MemorySampler:
    """Samples a memory reading every `interval` seconds in a thread and keeps the peak."""

    def __init__(self, read: Callable[[], int], interval: float = 0.05):
        self.read, self.interval, self.peak = read, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.read())
            except Exception:
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _timed(fn: Callable[[], str]) -> tuple[float, str]:
    start = time.perf_counter()
    verdict = fn()
    return (time.perf_counter() - start) * 1000, verdict


def run_naive(loaded: Any, grader: Any, code: str, count: int) -> PathResult:
    from graders.cases import build_cases
    from graders.request import build_request
    from graders.sandbox import run_harness
    from graders.supervision import SandboxLimits

    result = PathResult("naive", note="fresh unsandboxed python per submission (import jax/flax, run)")
    cases = build_cases(loaded.problem)
    limits = SandboxLimits(time_s=60.0)
    for _ in range(count):
        def one() -> str:
            request = build_request(loaded, cases, [code], output_budget=2**24)
            outcome = run_harness(request, limits, sandboxed=False)
            tests = outcome.events("test")
            ok = outcome.events("done") and all(getattr(m.event, "status", None) == "ok" for m in tests)
            return "ran" if ok else "failed"
        result.add(*_timed(one))
    return result


def run_grader(name: str, grader: Any, problem: str, code: str, count: int, note: str,
               before_each: Callable[[], object] | None = None) -> PathResult:
    result = PathResult(name, note=note)
    for _ in range(count):
        if before_each is not None:
            before_each()  # untimed
        _grade_once(result, grader, problem, code)
    return result


def _grade_once(result: PathResult, grader: Any, problem: str, code: str) -> None:
    start = time.perf_counter()
    report = grader.grade(problem, code)
    result.add((time.perf_counter() - start) * 1000, report.verdict.value)
    result.add_parts(report.timings, report.usage)


def run_interleaved(runs: list[tuple[str, Any, str, str]], code: str, count: int,
                    before_each: Callable[[], object]) -> list[PathResult]:
    """Several (name, grader, problem, note) paths one submission each in turn, `count` rounds, the order
    reversed every other round: load that changes during the run falls on every path alike, and no path is
    always the one graded right after another, so their difference is what differs between them."""
    results = [PathResult(name, note=note) for name, _, _, note in runs]
    for round_ in range(count):
        order = list(zip(results, runs, strict=True))
        for result, (_, grader, problem, _) in (order if round_ % 2 == 0 else order[::-1]):
            before_each()  # untimed
            _grade_once(result, grader, problem, code)
    return results


def without_model_checks(loaded: Any, directory: Path) -> Any:
    """A copy of a problem (id `<id>-no-model-checks`) with its state and transform checks off and the known
    mistakes only those checks prove dropped, in a bank of its own under `directory`."""
    import yaml

    from graders.problem import ProblemBank

    data = yaml.safe_load(loaded.source)
    data["id"] = f"{loaded.id}-no-model-checks"
    data["state_checks"] = False
    data.pop("transform_checks", None)
    data["known_mistakes"] = [m for m in data.get("known_mistakes", []) if m.get("rejected_by", "outputs") == "outputs"]
    (directory / "problems").mkdir(parents=True, exist_ok=True)
    (directory / "reference_solutions").mkdir(exist_ok=True)
    (directory / "problems" / f"{data['id']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (directory / "reference_solutions" / f"{data['id'].replace('-', '_')}.py").write_bytes(loaded.reference_source)
    bank = ProblemBank(directory / "problems")
    if bank.errors:
        raise BenchError(f"the copy without model checks does not load: {next(iter(bank.errors.values()))}")
    return bank


def run_concurrent(submit: Callable[[], str], total: int, concurrency: int) -> tuple[PathResult, float]:
    result = PathResult("concurrent")
    lock = threading.Lock()

    def one(_: int) -> None:
        ms, verdict = _timed(submit)
        with lock:
            result.add(ms, verdict)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        list(executor.map(one, range(total)))
    elapsed = time.perf_counter() - start
    return result, total / elapsed if elapsed > 0 else 0.0


class HttpClient:
    """The public HTTP API, just enough to submit and poll (urllib: no extra dependency)."""

    def __init__(self, url: str, token: str | None = None):
        self.url = url.rstrip("/") + "/api/v1"
        self.token = token or self._register()

    def _request(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json",
                 auth: bool = True) -> Any:
        import urllib.error
        import urllib.request

        req = urllib.request.Request(self.url + path, data=body, method=method)
        if body is not None:
            req.add_header("Content-Type", content_type)
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            if exc.code == 429:
                raise BenchError(f"{method} {path}: 429, the server's per-user submission limit; start the server "
                                 "under test with GRADAX_SUBMIT_RATE=0") from exc
            raise BenchError(f"{method} {path}: HTTP {exc.code}: {exc.read()[:500]!r}") from exc

    def _register(self) -> str:
        import secrets
        import urllib.parse

        username, password = f"bench{secrets.token_hex(4)}", secrets.token_urlsafe(16)
        self._request("POST", "/auth/register", json.dumps({"username": username, "password": password}).encode(),
                      auth=False)
        form = urllib.parse.urlencode({"username": username, "password": password}).encode()
        token = self._request("POST", "/auth/token", form, "application/x-www-form-urlencoded", auth=False)
        return str(token["access_token"])

    def grade(self, problem: str, code: str, timeout_s: float = 120.0) -> str:
        """Submit, then long-poll (`?wait=`) as the browser does: answered the moment the verdict is stored."""
        created = self._request("POST", "/submissions", json.dumps({"problem_id": problem, "code": code}).encode())
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self._request("GET", f"/submissions/{created['id']}?wait=30")
            if got.get("status") == "done":
                return str(got.get("verdict"))
        return "timeout"


def run_bench(args: argparse.Namespace) -> int:
    if getattr(args, "bank", False):
        from graders.bench_bank import run_bank

        return run_bank(args)
    code = Path(args.file).read_text() if getattr(args, "file", None) else SUBMISSION
    problem = getattr(args, "problem", PROBLEM)
    throughput_n = getattr(args, "throughput", 0) or 2 * args.submissions
    out: dict[str, Any] = {"problem": problem, "paths": {}}
    if getattr(args, "url", None):
        try:
            out["http"] = _bench_http(args, problem, code, throughput_n)
        except BenchError as exc:
            print(f"gradax bench: {exc}", file=sys.stderr)
            return 2
    if not getattr(args, "http_only", False):
        try:
            out.update(_bench_engine(args, problem, code, throughput_n))
        except BenchError as exc:
            print(f"gradax bench: {exc}", file=sys.stderr)
            return 2
    _verdicts_ok = _report(out, as_json=args.json)
    return 0 if _verdicts_ok else 1


def _bench_http(args: argparse.Namespace, problem: str, code: str, throughput_n: int) -> dict[str, Any]:
    client = HttpClient(args.url, getattr(args, "token", None))
    for _ in range(2):  # let the server's pool warm this problem
        client.grade(problem, code)
    sequential = PathResult("http", note=f"POST /submissions to verdict, {args.url}")
    for _ in range(args.submissions):
        time.sleep(args.pause)  # untimed: lets the server's pool refill, as between real students' submissions
        sequential.add(*_timed(lambda: client.grade(problem, code)))
    # The API allows one attempt in grading per user and problem: one user per concurrent submitter.
    clients: queue.Queue[HttpClient] = queue.Queue()
    clients.put(client)
    for _ in range(args.concurrency - 1):
        clients.put(HttpClient(args.url))

    def submit() -> str:
        mine = clients.get()
        try:
            return mine.grade(problem, code)
        finally:
            clients.put(mine)

    concurrent, rate = run_concurrent(submit, throughput_n, args.concurrency)
    return {"sequential": sequential.to_json(), "concurrent": concurrent.to_json(),
            "throughput_per_s": round(rate, 2), "concurrency": args.concurrency}


def _bench_engine(args: argparse.Namespace, problem: str, code: str, throughput_n: int) -> dict[str, Any]:
    from graders.engine import Grader
    from graders.executor import make_executor
    from graders.pool import WarmPool
    from graders.problem import ProblemBank
    from graders.settings import get_settings

    settings = get_settings()
    bank = ProblemBank(settings.problems_dir)
    loaded = bank.get(problem)
    if loaded is None:
        print(f"gradax bench: unknown problem {problem!r}", file=sys.stderr)
        raise SystemExit(2)
    executor = make_executor(settings)
    warm = Grader(bank, settings, executor=executor)
    off_bank = None
    if getattr(args, "without_model_checks", False):
        scratch = Path(tempfile.mkdtemp(prefix="gradax-bench-"))
        atexit.register(shutil.rmtree, scratch, True)
        off_bank = without_model_checks(loaded, scratch)
    off_loaded = off_bank.get(f"{problem}-no-model-checks") if off_bank is not None else None
    cold = Grader(bank, settings, executor=make_executor(settings, pool="cold"))
    paths: dict[str, Any] = {}
    cold.grade(problem, code)  # reference outputs computed once, outside every measurement
    if args.naive:
        paths["naive"] = run_naive(loaded, cold, code, args.naive).to_json()
    if args.cold:
        paths["cold"] = run_grader("cold", cold, problem, code, args.cold,
                                   "fresh sandboxed python per submission (gradax grade)").to_json()
    result: dict[str, Any] = {"paths": paths}
    if not isinstance(executor, WarmPool):
        result["warm_error"] = f"the warm pool is off or unavailable here ({type(executor).__name__})"
        return result
    pool = executor
    warm_note = ("Grader.grade through the warm pool (the server's path), one at a time, each submitted when a "
                 "warm child is ready")
    try:
        start = time.perf_counter()
        pool.prewarm(loaded, warm.limits_for(loaded))
        if not pool.wait_ready(loaded, 1, timeout=300):
            result["warm_error"] = f"the warm pool did not become ready: {pool.failure or 'timed out'}"
            return result
        result["pool_start_s"] = round(time.perf_counter() - start, 2)
        with MemorySampler(pool.memory_bytes) as memory:
            warm.grade(problem, code)  # first child after start-up, not counted
            # Latency "on a warm server": each timed submission starts once a warm child is ready (the
            # pool refills between submissions); the concurrent phase below measures the sustained rate.
            off: PathResult | None = None
            if off_bank is None or off_loaded is None:
                sequential = run_grader("warm", warm, problem, code, args.submissions, warm_note,
                                        before_each=lambda: pool.wait_ready(loaded, 1, timeout=120))
            else:
                warm_off = Grader(off_bank, settings, executor=executor)
                pool.prewarm(off_loaded, warm_off.limits_for(off_loaded))
                warm_off.grade(off_loaded.id, code)  # its reference outputs and first child, not counted

                # Each problem's children all ready (none warming) before a timed submission: a child that
                # warms meanwhile would take CPU from whichever path happens to run then.
                stocked = max(1, min(pool.settings.pool_prefork, pool.settings.pool_children() // 2))

                def both_ready() -> None:
                    pool.wait_ready(loaded, stocked, timeout=120)
                    pool.wait_ready(off_loaded, stocked, timeout=120)

                sequential, off = run_interleaved(
                    [("warm", warm, problem, warm_note),
                     ("warm_no_model_checks", warm_off, off_loaded.id,
                      "the same, on a copy of the problem with state_checks: false and no transform_checks, "
                      "interleaved one for one with warm")], code, args.submissions, both_ready)
                result["model_checks_cost_ms"] = model_checks_cost(sequential, off)
            pool.wait_ready(loaded, 1, timeout=60)
            concurrent, rate = run_concurrent(lambda: warm.grade(problem, code).verdict.value, throughput_n,
                                              args.concurrency)
        paths["warm"] = sequential.to_json()
        if off is not None:
            paths["warm_no_model_checks"] = off.to_json()
        paths["warm_concurrent"] = concurrent.to_json()
        result["throughput_per_s"] = round(rate, 2)
        result["concurrency"] = args.concurrency
        result["pool_memory_peak_mb"] = round(memory.peak / 2**20, 1)
        warmups = sorted(pool.warmup_s)
        result["pool"] = {"size": pool.settings.pool_children(), "prefork": pool.settings.pool_prefork,
                          "stats": dict(pool.stats),
                          "child_warmup_p50_s": _r(percentile(warmups, 50), 2),
                          "child_warmup_cpu_s": _r(pool.warmup_cpu_s(), 2)}
    finally:
        pool.close()
    return result


def model_checks_cost(on: PathResult, off: PathResult) -> dict[str, float | None]:
    """What the model checks add to a warm submission: the median of the one-for-one differences (each pair
    graded back to back), the p50s' difference, and the parts the reports time (child probes, parent stages)."""
    pairs = [a - b for a, b in zip(on.latencies_ms, off.latencies_ms, strict=False)]
    cpu_pairs = [a - b for a, b in zip(on.parts.get("cpu_ms", []), off.parts.get("cpu_ms", []), strict=False)]
    parts = {key: _r(percentile(values, 50), 2) for key, values in on.parts.items()
             if key in ("probes_ms", "probes_cpu_ms", "model_stages_ms")}
    return {"paired_median_ms": _r(statistics.median(pairs)) if pairs else None,
            "p50_difference_ms": _r(on.p50 - off.p50) if on.p50 is not None and off.p50 is not None else None,
            "paired_median_cpu_ms": _r(statistics.median(cpu_pairs)) if cpu_pairs else None,
            **{f"{key}_p50": value for key, value in parts.items()}}


def _report(out: dict[str, Any], as_json: bool) -> bool:
    paths = out.get("paths", {})
    naive_p50 = (paths.get("naive") or {}).get("p50_ms")
    warm_p50 = (paths.get("warm") or {}).get("p50_ms")
    http_p50 = ((out.get("http") or {}).get("sequential") or {}).get("p50_ms")
    fast_p50 = http_p50 if http_p50 is not None else warm_p50
    ratio = round(naive_p50 / fast_p50, 1) if naive_p50 and fast_p50 else None
    out["ratio_naive_over_warm"] = ratio
    rate = (out.get("http") or {}).get("throughput_per_s", out.get("throughput_per_s"))
    out["targets"] = {
        "p50_ms": {"target": f"< {TARGET_P50_MS}", "measured": fast_p50,
                   "met": fast_p50 is not None and fast_p50 < TARGET_P50_MS,
                   "path": "http" if http_p50 is not None else "warm (engine, no HTTP)"},
        "ratio": {"target": f">= {TARGET_RATIO}", "measured": ratio,
                  "met": ratio is not None and ratio >= TARGET_RATIO},
        "throughput_per_s": {"target": f">= {TARGET_THROUGHPUT}", "measured": rate,
                             "met": rate is not None and rate >= TARGET_THROUGHPUT},
    }
    expected = {"accepted", "ran"}
    verdicts_ok = all(set(p["verdicts"]) <= expected for p in paths.values())
    for part in ("sequential", "concurrent"):
        if out.get("http"):
            verdicts_ok = verdicts_ok and set(out["http"][part]["verdicts"]) <= expected
    out["verdicts_ok"] = verdicts_ok
    if as_json:
        print(json.dumps(out, indent=2))
        return verdicts_ok
    rows = [(name, p) for name, p in paths.items()]
    if out.get("http"):
        rows += [("http", out["http"]["sequential"]), ("http_concurrent", out["http"]["concurrent"])]
    print(f"gradax bench: {out['problem']}, a correct submission")
    print(f"{'path':18} {'n':>4} {'p50 ms':>9} {'p95 ms':>9}  verdicts")
    for name, p in rows:
        print(f"{name:18} {p['n']:>4} {_fmt(p['p50_ms']):>9} {_fmt(p['p95_ms']):>9}  {p['verdicts']}")
        if p.get("parts_p50_ms"):
            print(f"{'':18} parts (p50 ms): {p['parts_p50_ms']}")
    if out.get("model_checks_cost_ms"):
        print(f"model checks cost per submission (warm, interleaved with their copy turned off): "
              f"{out['model_checks_cost_ms']}")
    if "warm_error" in out:
        print(out["warm_error"])
    if out.get("pool_memory_peak_mb") is not None:
        print(f"pool memory peak: {out['pool_memory_peak_mb']} MB (zygote + children, cgroup usage); "
              f"pool {out['pool']}")
    for name, t in out["targets"].items():
        print(f"target {name}: {t['target']}, measured {t['measured']} -> {'met' if t['met'] else 'NOT met'}"
              + (f" ({t['path']})" if "path" in t else ""))
    if not verdicts_ok:
        print("some submissions were not accepted: see the verdicts above")
    return verdicts_ok


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
