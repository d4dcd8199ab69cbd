"""Bounded load test of the scaled-out setup on loopback, with one and then two grading workers.

Starts a private PostgreSQL and Redis (tests/service/servers.py), `gradax serve` in celery mode on
127.0.0.1, N `gradax worker`s, grades one warm-up submission, then runs locust headless with a fixed
number of users and submissions (tests/load/locustfile.py) and a hard time limit. Prints, and writes to
test-artifacts/load/results.json: graded submissions per second, p50/p95 of submit->graded and of the
POST, and errors. Everything it started is stopped at the end.

    .venv/bin/python tests/load/run_load.py --workers 1 2 --users 4 --submissions 5 [--pool warm|cold]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from service.servers import PostgresServer, Process, RedisServer, free_port  # noqa: E402

LOCUST = Path(sys.executable).parent / "locust"
OUT = ROOT / "test-artifacts" / "load"
REFERENCE = (ROOT / "reference_solutions" / "nnx_module_basics.py").read_text()


def warm_up(base: str) -> float:
    """One graded submission first: the reference outputs and the pool are then warm, as in production."""
    started = time.monotonic()
    with httpx.Client(base_url=base, timeout=30) as c:
        user = f"warm{time.time_ns()}"
        c.post("/api/v1/auth/register", json={"username": user, "password": "warm up password"}).raise_for_status()
        token = c.post("/api/v1/auth/token", data={"username": user, "password": "warm up password"}).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        r = c.post("/api/v1/submissions", json={"problem_id": "nnx-module-basics", "code": REFERENCE},
                   headers=headers)
        r.raise_for_status()
        while True:
            body = c.get(f"/api/v1/submissions/{r.json()['id']}", headers=headers).json()
            if body["status"] == "done":
                if body["verdict"] != "accepted":
                    raise RuntimeError(f"warm-up graded {body['verdict']}: {body['report']}")
                return time.monotonic() - started
            if time.monotonic() - started > 300:
                raise RuntimeError("warm-up submission not graded in 300 s")
            time.sleep(0.2)


def run_locust(base: str, users: int, submissions: int, prefix: Path, run_time_s: int) -> dict[str, Any]:
    env = {**os.environ, "GRADAX_LOAD_SUBMISSIONS": str(submissions)}
    started = time.monotonic()
    proc = subprocess.run(
        [str(LOCUST), "-f", str(ROOT / "tests" / "load" / "locustfile.py"), "--headless", "--host", base,
         "-u", str(users), "-r", str(users), "--run-time", f"{run_time_s}s", "--stop-timeout", "10",
         "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"],
        capture_output=True, text=True, env=env, timeout=run_time_s + 120)
    wall = time.monotonic() - started
    with open(f"{prefix}_stats.csv") as fh:
        rows = {r["Name"]: r for r in csv.DictReader(fh)}
    grade, post = rows["submit->graded"], rows["POST /submissions"]
    failures = sum(int(r["Failure Count"]) for name, r in rows.items() if name != "Aggregated")
    graded = int(grade["Request Count"])
    return {
        "users": users,
        "submissions": users * submissions,
        "graded": graded,
        "errors": failures,
        "wall_s": round(wall, 1),
        # locust: samples / seconds from the start of the run to the last sample
        "graded_per_s": round(float(grade["Requests/s"]), 2),
        "graded_p50_ms": int(float(grade["50%"])),
        "graded_p95_ms": int(float(grade["95%"])),
        "post_p50_ms": int(float(post["50%"])),
        "post_p95_ms": int(float(post["95%"])),
        "locust_exit": proc.returncode,
        "locust_stderr_tail": proc.stderr[-1500:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--submissions", type=int, default=5, help="per user")
    parser.add_argument("--pool", choices=["warm", "cold"], default="warm")
    parser.add_argument("--run-time", type=int, default=600, help="hard limit per run, seconds")
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    pg, redis = PostgresServer().start(), RedisServer().start()
    results: list[dict[str, Any]] = []
    try:
        for count in args.workers:
            data_dir = OUT / "data"
            env = {
                "GRADAX_DATABASE_URL": pg.create_database(f"load_{count}"),
                "GRADAX_REDIS_URL": redis.url,
                "GRADAX_GRADING_BACKEND": "celery",
                "GRADAX_DATA_DIR": str(data_dir),
                "GRADAX_SUBMIT_RATE": "0",
                "GRADAX_AUTH_RATE_PER_CLIENT": "0",  # every simulated student registers from this machine
                "GRADAX_SECRET_KEY": "load-test-secret-" + "x" * 40,
                "GRADAX_POOL": args.pool,
                "GRADAX_LOG_LEVEL": "WARNING",
                "GRADAX_ARGON2_TIME_COST": "1",
                "GRADAX_ARGON2_MEMORY_KIB": "8192",
            }
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            server = Process(["serve", "--host", "127.0.0.1", "--port", str(port), "--log-level-uvicorn", "warning"],
                             env, OUT / f"serve-{count}.log")
            workers: list[Process] = []
            try:
                server.wait_for_log("serving on")
                _wait_ready(base)
                for i in range(count):  # one at a time, so a worker that started is stopped even if the next fails
                    name = f"load{count}-{i}"
                    workers.append(Process(["worker", "--name", name], {**env, "GRADAX_LOG_LEVEL": "INFO"},
                                           OUT / f"worker-{name}.log"))
                    workers[-1].wait_for_log("ready.")
                warm = warm_up(base)
                result = run_locust(base, args.users, args.submissions, OUT / f"workers{count}", args.run_time)
                result.update(workers=count, pool=args.pool, warmup_s=round(warm, 1))
                results.append(result)
                print(json.dumps({k: v for k, v in result.items() if k != "locust_stderr_tail"}), flush=True)
            finally:
                for w in workers:
                    w.stop()
                server.stop()
    finally:
        pg.stop()
        redis.cleanup()
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    print("\n| workers | pool | graded | graded/s | submit->graded p50 / p95 ms | POST p50 / p95 ms | errors |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['workers']} | {r['pool']} | {r['graded']}/{r['submissions']} | {r['graded_per_s']} | "
              f"{r['graded_p50_ms']} / {r['graded_p95_ms']} | {r['post_p50_ms']} / {r['post_p95_ms']} | "
              f"{r['errors']} |")
    return 0 if all(r["errors"] == 0 and r["graded"] == r["submissions"] for r in results) else 1


def _wait_ready(base: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{base} not ready after {timeout} s")


if __name__ == "__main__":
    sys.exit(main())
