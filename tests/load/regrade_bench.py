"""Regrade throughput: N finished Submits of one problem graded again by the server's regrade job.

The app as `gradax serve` builds it (warm pool, grading slots from the machine unless --workers), N attempts
from N students (half the reference, half a known mistake, so verdicts are real), then the instructor's regrade
through the API once the server has settled (its start-up preparation done and its spare children ready, untimed,
as a server that has been up a while), timed from the POST to `done`, split into preparing and grading. Prints one
JSON line with the machine's load before and after (`os.getloadavg`), and writes it to
test-artifacts/regrade/results.json.

    .venv/bin/python tests/load/regrade_bench.py --attempts 100 [--problem nnx-module-basics] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from api.helpers import API, PASSWORD, login, make_settings, make_user  # noqa: E402

from app.main import create_app  # noqa: E402
from app.models import Attempt, Role, User, utcnow  # noqa: E402
from app.services.problems import get_or_create_progress, list_problems  # noqa: E402

OUT = ROOT / "test-artifacts" / "regrade"


def codes(problem_id: str) -> tuple[str, str]:
    spec = yaml.safe_load((ROOT / "problems" / f"{problem_id}.yaml").read_text())
    reference = (ROOT / "reference_solutions" / f"{problem_id.replace('-', '_')}.py").read_text()
    return reference, spec["known_mistakes"][0]["code"]


def _zygote_cpu(pool: Any) -> float:
    zygote = getattr(pool, "_zygote", None)
    return float(zygote.cpu_seconds()) if zygote is not None else 0.0


def settle(app: Any, timeout: float = 600.0) -> float:
    """Wait, untimed, for what a server that has been up a while has: its background preparation done and a
    spare child of each prepared problem within `pool_spares` ready (as `gradax bench --bank` does). Without
    this the regrade's clock also ran the start-up's spares (23 forks and warm-ups of the other problems, ~15
    CPU-s beside the regrade on 2 cores). Returns the seconds waited."""
    started = time.monotonic()
    deadline = started + timeout
    preparation, pool = app.state.preparation, app.state.grader.executor
    while (snap := preparation.snapshot())["queued"] or snap["preparing"]:
        if time.monotonic() > deadline:
            raise SystemExit(f"the background preparation did not finish in {timeout:.0f} s: {snap}")
        time.sleep(0.2)
    if not hasattr(pool, "wait_ready"):
        return time.monotonic() - started
    prepared = [p for p in list_problems(bank=preparation.bank)[0] if preparation.preparer.is_prepared(p)]
    for loaded in prepared[:pool.settings.spare_children()]:
        if not pool.wait_ready(loaded, 1, timeout=max(1.0, deadline - time.monotonic())):
            raise SystemExit(f"no spare child of {loaded.id} became ready: {pool.failure}")
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=100)
    parser.add_argument("--problem", default="nnx-module-basics")
    parser.add_argument("--workers", type=int, default=-1, help="grading slots (default: the machine's)")
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".gradax", help="caches (reference outputs)")
    args = parser.parse_args()
    right, wrong = codes(args.problem)
    with tempfile.TemporaryDirectory(prefix="gradax-regrade-") as tmp:
        settings = make_settings(Path(tmp), args.data_dir, pool="warm", grading_workers=args.workers)
        app = create_app(settings)
        factory = app.state.session_factory
        with factory() as session:
            for i in range(args.attempts):
                user = User(username=f"student{i}", password_hash="x", role=Role.STUDENT.value)
                session.add(user)
                session.flush()
                now = utcnow()
                session.add(Attempt(user_id=user.id, problem_id=args.problem, mode="submit",
                                    code=right if i % 2 == 0 else wrong, status="done", verdict="wrong_answer",
                                    score=0.0, created_at=now, finished_at=now))
                get_or_create_progress(session=session, user_id=user.id, problem_id=args.problem).attempts = 1
            session.commit()
        make_user(app, "teacher", Role.INSTRUCTOR)
        with TestClient(app) as client:
            teacher = login(client, "teacher", PASSWORD)
            pool = app.state.grader.executor
            settled_s = settle(app)
            load_before = os.getloadavg()
            cpu_before = time.process_time(), _zygote_cpu(pool)
            stats_before = dict(getattr(pool, "stats", {}))  # the start-up's spares are not the regrade's
            started = time.monotonic()
            r = client.post(f"{API}/instructor/problems/{args.problem}/regrade", headers=teacher)
            assert r.status_code == 202, r.text
            prepared_after = None
            while True:
                job: dict[str, Any] = client.get(f"{API}/instructor/problems/{args.problem}/regrade",
                                                 headers=teacher).json()
                if prepared_after is None and job["phase"] == "grading":
                    prepared_after = time.monotonic() - started
                if job["status"] != "running":
                    break
                time.sleep(0.2)
            total_s = time.monotonic() - started
            load_after = os.getloadavg()
            server_cpu = time.process_time() - cpu_before[0]
            warmup_cpu = _zygote_cpu(pool) - cpu_before[1]
            with factory() as session:
                accepted = session.query(Attempt).filter_by(verdict="accepted").count()
                runs_cpu = sum(((a.report or {}).get("usage") or {}).get("cpu_s") or 0.0
                               for a in session.query(Attempt).all())
            stats = {k: v - stats_before.get(k, 0) for k, v in getattr(pool, "stats", {}).items()}
    result = {"problem": args.problem, "attempts": args.attempts, "workers": job["workers"],
              "status": job["status"], "settled_before_s": round(settled_s, 1), "total_s": round(total_s, 1),
              "preparing_s": round(prepared_after or 0.0, 1),
              "grading_s": round(total_s - (prepared_after or 0.0), 1), "per_s": job["per_s"],
              "accepted_after": accepted,
              # CPU seconds per attempt: this process (server threads: claims, judging, the database), the warm
              # children before their run (fork, backend start, replay: the zygote's cgroup) and the runs
              # themselves (their cgroups); preparing included. Cores / this = the rate on an idle machine.
              "cpu_per_attempt_s": {"server": round(server_cpu / args.attempts, 3),
                                    "warmup": round(warmup_cpu / args.attempts, 3),
                                    "run": round(runs_cpu / args.attempts, 3)},
              "idle_estimate_per_s": round((os.cpu_count() or 1) * args.attempts
                                           / max(1e-9, server_cpu + warmup_cpu + runs_cpu), 2),
              "pool": {k: stats.get(k, 0) for k in ("warm", "cold", "stolen", "ready", "evicted")},
              "flipped": len(job["flipped"]), "cores": os.cpu_count(),
              "load_before": [round(x, 1) for x in load_before], "load_after": [round(x, 1) for x in load_after]}
    print(json.dumps(result))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0 if job["status"] == "done" and accepted == (args.attempts + 1) // 2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
