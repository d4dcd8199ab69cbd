"""Trusted workers (graders/trusted_workers.py): fills and reference runs in children of a process that imported
jax once."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from graders import compile_profile
from graders.compile_profile import fill_replay_cache
from graders.jax_env import jax_env, trusted_env
from graders.trusted_cache import cache_env
from graders.trusted_workers import RunOutcome, TrustedWorker, TrustedWorkerError, TrustedWorkers

pytestmark = [pytest.mark.slow]

ENTRIES: list[dict[str, Any]] = [
    {"k": "jit", "m": "jax._src.numpy.ufuncs", "n": "tanh", "a": [{"a": [3, 4], "d": "float32", "w": False,
                                                                  "np": False}], "kw": {}},
    {"k": "jit", "m": "jax._src.numpy.ufuncs", "n": "add", "a": [{"a": [3, 4], "d": "float32", "w": False,
                                                                 "np": False},
                                                                {"a": [4], "d": "float32", "w": False,
                                                                 "np": False}], "kw": {}},
]


def _env() -> dict[str, str]:
    return trusted_env()


def _cannot_start(self: TrustedWorker, env: dict[str, str]) -> None:
    raise TrustedWorkerError("the trusted worker did not start")


def _fill(workers: TrustedWorkers, write_dir: Path, read_dirs: list[Path], scratch: Path) -> RunOutcome:
    """ENTRIES replayed into `write_dir` in a worker's child, as `fill_replay_cache` runs a fill."""
    return workers.run_to_files(_env(), "replay", cache_env(write_dir, read_dirs), json.dumps(ENTRIES).encode(),
                                scratch, timeout_s=300)


def _keys(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith("-cache"))


def test_fills_share_a_worker_and_each_compiles_in_a_fresh_child(tmp_path: Path) -> None:
    """Fills of the same profile through one worker: the worker (jax imported) is reused, and the second fill
    compiles every program again into its own empty staging directory (a child of its own, empty jit caches), so
    its keys are complete. A third, with the first staging directory to read, compiles nothing and copies all."""
    workers = TrustedWorkers()
    try:
        outcomes, pids = [], []
        for name, reads in (("one", []), ("two", []), ("three", [tmp_path / "one"])):
            (tmp_path / name).mkdir()
            scratch = tmp_path / f"scratch-{name}"
            scratch.mkdir()
            outcomes.append(_fill(workers, tmp_path / name, reads, scratch))
            pids.append([w.proc.pid for w in workers._idle])
        assert [o.status for o in outcomes] == [0, 0, 0], [o.stderr for o in outcomes]
        assert pids[0] == pids[1] == pids[2] and len(pids[0]) == 1  # one worker served all three
        said = [json.loads(o.stdout) for o in outcomes]
        assert said[0]["replay"]["replayed"] == len(ENTRIES) and said[0]["replay"]["failed"] == 0
        assert _keys(tmp_path / "one") and _keys(tmp_path / "one") == _keys(tmp_path / "two")
        # Every program, generic_warmup's included, compiled again by the second fill: nothing in its child's memory.
        assert said[1]["compiled"] == said[0]["compiled"] == len(_keys(tmp_path / "one"))
        assert said[2]["compiled"] == 0 and said[2]["reused"] == len(_keys(tmp_path / "one"))
        assert _keys(tmp_path / "three") == _keys(tmp_path / "one")
        # The child sees XLA's grading flags, as a fresh trusted process did (jax keys its cache on them).
        assert _env()["XLA_FLAGS"] == jax_env()["XLA_FLAGS"]
    finally:
        workers.close()
    assert not [p for p in pids[0] if _alive(p)]


def test_a_failed_fill_is_a_status_and_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    workers = TrustedWorkers()
    try:
        not_a_dir = tmp_path / "file"
        not_a_dir.write_text("x")
        (tmp_path / "scratch").mkdir()
        failed = _fill(workers, not_a_dir, [], tmp_path / "scratch")
        assert failed.status != 0 and "Error" in failed.stderr, failed
        (first,) = workers._idle
        first.kill()  # e.g. the OOM killer
        (tmp_path / "staging").mkdir()
        ok = _fill(workers, tmp_path / "staging", [], tmp_path / "scratch")
        assert ok.status == 0, ok.stderr
        (second,) = workers._idle
        assert second.proc.pid != first.proc.pid
    finally:
        workers.close()


def test_a_fill_without_a_worker_runs_in_a_process_of_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If no worker can start, `fill_replay_cache` fills as before, in a fresh `graders.compile_profile replay`."""
    monkeypatch.setattr(TrustedWorker, "__init__", _cannot_start)
    monkeypatch.setattr(compile_profile, "WORKERS", TrustedWorkers())
    keys = fill_replay_cache(ENTRIES, tmp_path / "jax-replay")
    assert keys and sorted(f"{k}-cache" for k in keys) == _keys(tmp_path / "jax-replay")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_a_forked_process_does_not_use_its_parents_workers(tmp_path: Path) -> None:
    """A process forked after fills (a prefork server, a task queue's children) starts workers of its own: writing
    to its parent's would mix two processes' fills on one request pipe."""
    workers = TrustedWorkers()
    try:
        (tmp_path / "scratch").mkdir()
        (tmp_path / "a").mkdir()
        assert _fill(workers, tmp_path / "a", [], tmp_path / "scratch").status == 0
        (parent_worker,) = workers._idle
        pid = os.fork()
        if pid == 0:
            code = 0 if workers._idle == [] else 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert workers._idle == [parent_worker] and parent_worker.alive()  # the parent's, untouched
    finally:
        workers.close()


def _scaffold_problem(tmp_path: Path, problem_id: str = "worker-ref") -> Any:
    from graders.problem import ProblemBank
    from graders.scaffold import scaffold

    scaffold(problem_id, tmp_path / "problems")
    return ProblemBank(tmp_path / "problems").problems[problem_id]


def test_reference_runs_share_a_worker_and_match_a_process_of_their_own(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A reference run (outputs of the reference and its known mistakes, and the profile's recording) in a child of
    a trusted worker gives what the one-shot process gives, and two runs share one worker."""
    from graders import reference, trusted_workers
    from graders.cases import build_cases
    from graders.compare import outputs_match

    loaded = _scaffold_problem(tmp_path)
    cases = build_cases(loaded.problem)
    workers = TrustedWorkers()
    monkeypatch.setattr(trusted_workers, "WORKERS", workers)
    try:
        first = reference.compute(loaded, cases, "k1", record_profile=True, cache_dir=tmp_path / "cache-1")
        (worker,) = workers._idle
        second = reference.compute(loaded, cases, "k2", record_profile=True, cache_dir=tmp_path / "cache-2")
        assert workers._idle == [worker] and worker.alive()  # one worker served both
    finally:
        workers.close()

    monkeypatch.setattr(TrustedWorker, "__init__", _cannot_start)
    monkeypatch.setattr(trusted_workers, "WORKERS", TrustedWorkers())
    alone = reference.compute(loaded, cases, "k3", record_profile=True, cache_dir=tmp_path / "cache-3")
    for got in (first, second):
        assert got.profile is not None and got.profile.entries and got.profile == alone.profile
        assert set(got.reference.outputs) == set(alone.reference.outputs) == set(range(len(cases)))
        for index, output in alone.reference.outputs.items():
            assert outputs_match(got.reference.outputs[index], output, loaded.problem.tolerance)
        assert set(got.mistakes) == set(alone.mistakes)
    assert any((tmp_path / "cache-1" / "jax-trusted").iterdir())  # compiled through the trusted cache it was given


def test_a_run_past_its_time_is_stopped_and_the_worker_serves_the_next(tmp_path: Path) -> None:
    """The wall-clock backstop stops a trusted run that hangs (its session is killed, not the worker's), and the same
    worker then runs the next one."""
    from graders.cases import build_cases
    from graders.request import build_request
    from graders.supervision import SandboxLimits

    loaded = _scaffold_problem(tmp_path)
    cases = build_cases(loaded.problem)
    hang = build_request(loaded, cases, ["import time\ntime.sleep(600)\n"], output_budget=2**20)
    limits = SandboxLimits(time_s=1, wall_s=2, memory_mb=2048, result_bytes=2**24, log_bytes=2**16)
    workers = TrustedWorkers()
    try:
        stopped = workers.run(_env(), "outputs-and-profile", {"PYTHONHASHSEED": "0"}, hang, limits)
        assert stopped.timed_out and not stopped.events("done"), stopped
        (worker,) = workers._idle
        right = build_request(loaded, cases, [loaded.reference_source.decode()], output_budget=2**24)
        done = workers.run(_env(), "outputs-and-profile", {"PYTHONHASHSEED": "0"}, right,
                           SandboxLimits(time_s=120, memory_mb=8192, result_bytes=2**26, log_bytes=2**16))
        assert done.events("done") and done.exit_code == 0, (done.stderr, done.exit_code)
        assert workers._idle == [worker]
    finally:
        workers.close()


def test_recordings_run_in_a_worker_and_match_a_process_of_their_own(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`record_profile` (a profile needed when the outputs were stored already: a new profile format, a deleted
    file) records in a child of a trusted worker, as fills and reference runs do, and two recordings share the
    worker; without a worker it records in a process of its own, and all three record the same entries."""
    import subprocess

    from graders.cases import build_cases

    loaded = _scaffold_problem(tmp_path)
    cases = build_cases(loaded.problem)
    fresh_processes: list[object] = []
    real_run = subprocess.run

    def counting_run(*args: Any, **kwargs: Any) -> Any:
        fresh_processes.append(args[0])
        return real_run(*args, **kwargs)

    monkeypatch.setattr(subprocess, "run", counting_run)
    workers = TrustedWorkers()
    monkeypatch.setattr(compile_profile, "WORKERS", workers)
    try:
        first = compile_profile.record_profile(loaded, cases, cache_dir=tmp_path / "cache")
        (worker,) = workers._idle
        second = compile_profile.record_profile(loaded, cases)
        assert workers._idle == [worker] and worker.alive()  # one worker served both
    finally:
        workers.close()
    assert fresh_processes == []
    assert any((tmp_path / "cache" / "jax-trusted").iterdir())  # compiled through the trusted cache it was given

    monkeypatch.setattr(TrustedWorker, "__init__", _cannot_start)
    monkeypatch.setattr(compile_profile, "WORKERS", TrustedWorkers())
    alone = compile_profile.record_profile(loaded, cases)
    assert len(fresh_processes) == 1 and "record" in fresh_processes[0]  # type: ignore[operator]
    assert first.entries and first == second == alone


def _trusted_worker_pids() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"graders.trusted_workers" in (entry / "cmdline").read_bytes():
                found.add(int(entry.name))
        except OSError:
            continue
    return found


def test_a_recording_past_its_time_is_stopped_and_the_next_one_runs(tmp_path: Path) -> None:
    """A recording that hangs is stopped at its deadline, its child (a session of its own) with its worker, and the
    next recording gets a worker of its own."""
    import time

    from graders.cases import build_cases
    from graders.request import build_request
    from graders.trusted_workers import TrustedRunTimeout

    loaded = _scaffold_problem(tmp_path)
    cases = build_cases(loaded.problem)
    hang = build_request(loaded, cases, ["import time\ntime.sleep(600)\n"], output_budget=2**20)
    before = _trusted_worker_pids()
    workers = TrustedWorkers()
    try:
        (tmp_path / "hang").mkdir()
        with pytest.raises(TrustedRunTimeout):
            workers.run_to_files(_env(), "record", {}, hang, tmp_path / "hang", timeout_s=3)
        assert workers._idle == []
        deadline = time.monotonic() + 10
        while [p for p in _trusted_worker_pids() - before if _alive(p)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in _trusted_worker_pids() - before if _alive(p)]  # neither the worker nor its child
        (tmp_path / "right").mkdir()
        right = build_request(loaded, cases, [loaded.reference_source.decode()], output_budget=2**20)
        done = workers.run_to_files(_env(), "record", {}, right, tmp_path / "right", timeout_s=300)
        assert done.status == 0, done.stderr
        assert json.loads(done.stdout)["entries"]
    finally:
        workers.close()
