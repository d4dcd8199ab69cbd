"""`gradax prepare`: every problem's trusted work done up front, safely from several processes at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from small_bank import LIMITS, correct_answer

from graders.engine import Grader
from graders.jax_env import xla_flags
from graders.pool import WarmPool
from graders.prepare import Preparer, UnknownProblems, is_prepared, prepare
from graders.problem import ProblemBank
from graders.scaffold import scaffold
from graders.settings import GraderSettings

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("pool")]

GRADAX = Path(sys.executable).parent / "gradax"
IDS = ("prep-a", "prep-b")


def test_prepare_twice_at_once_on_a_fresh_data_dir_then_the_first_submission_is_warm(tmp_path: Path) -> None:
    problems = tmp_path / "problems"
    for problem_id in IDS:
        scaffold(problem_id, problems)
        path = problems / f"{problem_id}.yaml"
        path.write_text(path.read_text() + LIMITS)
    data = tmp_path / "fresh-data"  # does not exist yet: nothing may race to create what bwrap binds
    env = {**os.environ, "GRADAX_DATA_DIR": str(data), "GRADAX_PROBLEMS_DIR": str(problems)}

    # Two `gradax prepare` at once (e.g. the image build's and a server's): each problem is computed once.
    procs = [subprocess.Popen([str(GRADAX), "prepare"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    lines = [line for out, _ in outputs for line in out.splitlines()]
    for problem_id in IDS:
        statuses = sorted(line.split()[0] for line in lines if line.split()[1:2] == [problem_id])
        assert statuses == ["cached", "prepared"], lines
    assert all(out.splitlines()[-1].startswith("2 problems: ") for out, _ in outputs), outputs

    settings = GraderSettings(data_dir=data, problems_dir=problems)
    bank = ProblemBank(problems)
    assert all(is_prepared(bank.problems[i], settings) for i in IDS)
    # The API says the same without recomputing anything, and refuses unknown ids before doing any work.
    again = prepare(bank, ["prep-b"], settings, preparer=Preparer(settings))
    assert [(p.id, p.status) for p in again.problems] == [("prep-b", "cached")] and again.ok
    with pytest.raises(UnknownProblems, match="'nope'"):
        prepare(bank, ["prep-a", "nope"], settings)
    unknown = subprocess.run([str(GRADAX), "prepare", "prep-a", "nope"], env=env, capture_output=True, text=True,
                             timeout=120)
    assert unknown.returncode == 2 and "unknown problem: 'nope'" in unknown.stderr, unknown
    assert "prep-a" in unknown.stderr and not unknown.stdout  # it names what exists and prepares nothing

    # The first submission after prepare: the warm pool starts on this data dir and grades it warm, with
    # the reference outputs read from disk (a trusted run would take seconds).
    pool = WarmPool(settings.model_copy(update={"pool_size": 1, "pool_prefork": 1}))
    try:
        grader = Grader(bank, settings, executor=pool)
        start = time.monotonic()
        report = grader.grade("prep-a", correct_answer("prep-a"))
        assert report.verdict == "accepted", report.message
        assert pool.stats["warm"] == 1 and pool.stats["cold"] == 0, (pool.stats, pool.failure)
        assert report.timings["reference_ms"] < 1000, report.timings
        assert time.monotonic() - start < 60
    finally:
        pool.close()

    # `gradax grade` (cold: a fresh sandboxed Python) of a prepared problem compiles through the replay cache,
    # read-only, as a warm child does; the submission sees the cache's programs and the answer is accepted. It
    # compiles with the XLA flags the fill compiled those programs with (else no key would match).
    looks = ("import os, jax\nfound = jax.config.jax_compilation_cache_dir\n"
             "print('cache', found, len(os.listdir(found)) if found else 0, "
             "'flags=' + os.environ.get('XLA_FLAGS', '').replace(' ', ','))\n")
    (tmp_path / "cold.py").write_text(looks + correct_answer("prep-a"))
    cold = subprocess.run([str(GRADAX), "grade", "prep-a", str(tmp_path / "cold.py"), "--json"],
                          env={**env, "GRADAX_POOL": "cold"}, capture_output=True, text=True, timeout=300)
    graded = json.loads(cold.stdout)
    assert graded["verdict"] == "accepted", cold.stdout[-3000:]
    said = graded["stdout"].split()
    assert said[:2] == ["cache", "/opt/gradax-jax-cache"] and int(said[2]) > 0, graded["stdout"]
    assert said[3] == "flags=" + xla_flags().replace(" ", ",") and "optimization_level" in said[3], said


def _count_trusted_runs(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Fail on a recording run of its own; return the list each reference run appends its `record_profile` to."""
    from graders import compile_profile, reference

    def no_second_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the profile was recorded in a trusted run of its own")

    monkeypatch.setattr(compile_profile, "record_profile", no_second_run)
    started: list[bool] = []
    real_compute = reference.compute

    def counting_compute(*args: object, **kwargs: object) -> reference.ReferenceOutputs:
        started.append(bool(kwargs.get("record_profile")))
        return real_compute(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reference, "compute", counting_compute)
    return started


def test_one_trusted_run_computes_the_outputs_and_records_the_profile(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Preparing a problem starts one trusted process for its outputs and its profile (it used to start two, each
    importing jax and running the reference); what it records is what a recording of its own records."""
    from graders import compile_profile
    from graders.cases import build_cases

    problems = tmp_path / "problems"
    scaffold("prep-once", problems)
    bank = ProblemBank(problems)
    loaded = bank.problems["prep-once"]
    settings = GraderSettings(data_dir=tmp_path / "data", problems_dir=problems)
    separate = compile_profile.record_profile(loaded, build_cases(loaded.problem))
    assert separate.entries, "the reference dispatched nothing to record"
    started = _count_trusted_runs(monkeypatch)
    done = Preparer(settings).prepare_one(loaded)
    assert done.status == "prepared", done
    assert started == [True]
    fresh = Preparer(settings)  # reads the files: the outputs and the same profile are stored
    assert fresh.is_prepared(loaded)
    assert fresh.profiles.get(loaded, build_cases(loaded.problem)) == separate.entries
    stored = json.loads(fresh.profiles.path(loaded).read_text())
    assert (stored["entries"], stored["extra"]) == separate  # the known mistakes' extra entries too


def test_a_warm_grading_of_an_unprepared_problem_starts_one_trusted_run(tmp_path: Path, data_dir: Path,
                                                                        warm_pool: WarmPool,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The first submission to a problem nobody prepared, graded through a warm pool (a server whose background
    preparation has not reached it, `gradax grade` with GRADAX_POOL=warm): one trusted run computes the reference
    outputs and records the profile the child replays (the pool used to record it in a second run, another jax
    start and reference run in that student's wait)."""
    import uuid

    problems = tmp_path / "problems"
    scaffold("prep-on-demand", problems)
    path = problems / "prep-on-demand.yaml"
    path.write_text(path.read_text() + LIMITS)
    reference_file = tmp_path / "reference_solutions" / "prep_on_demand.py"
    reference_file.write_text(reference_file.read_text() + f"# {uuid.uuid4().hex}\n")  # in no cache yet
    loaded = ProblemBank(problems).problems["prep-on-demand"]
    started = _count_trusted_runs(monkeypatch)
    settings = GraderSettings(data_dir=data_dir, problems_dir=problems)
    warm_before = warm_pool.stats["warm"]
    grader = Grader(ProblemBank(problems), settings, executor=warm_pool)
    report = grader.grade_loaded(loaded, correct_answer("prep-on-demand"))
    assert report.verdict.value == "accepted", report.message
    assert started == [True]
    assert warm_pool.stats["warm"] == warm_before + 1  # graded in a child that replayed the recorded profile
    assert is_prepared(loaded, settings)


def test_preparing_an_edited_reference_again_compiles_nothing_new(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """The trusted runs compile through persistent caches of their own (graders/trusted_cache.py): after an edit
    that changes no program (a comment in the reference), the problem is a new version, so its outputs are
    computed and its profile recorded and replayed again, but the reference run finds every program it compiled
    in `jax-trusted` and the fill finds its programs in the replay cache: nothing is compiled again. And the replay
    cache still holds nothing but what fills compiled or took.

    The first fill already compiles nothing: every module it lowers (library functions and primitives on zeros) is
    one the reference run compiled just before, metadata and all, so it takes those programs from `jax-trusted`."""
    import logging

    from graders.cases import build_cases
    from graders.compile_profile import replay_cache_dir
    from graders.reference import ReferenceCache
    from graders.trusted_cache import trusted_cache_dir

    problems = tmp_path / "problems"
    scaffold("prep-edit", problems)
    settings = GraderSettings(data_dir=tmp_path / "data", problems_dir=problems)
    trusted, replay = trusted_cache_dir(settings.cache_dir), replay_cache_dir(settings.cache_dir)
    # A cold grader's reference outputs (no profile recorded) compile into the trusted cache too.
    loaded = ProblemBank(problems).problems["prep-edit"]
    ReferenceCache(settings.cache_dir).get(loaded, build_cases(loaded.problem))
    assert list(trusted.iterdir()) and not replay.exists()
    caplog.set_level(logging.INFO, logger="gradax.compile_profile")
    first = Preparer(settings).prepare_one(loaded)
    assert first.status == "prepared", first
    (fill,) = [r for r in caplog.records if r.getMessage().startswith("replayed ")]
    assert fill.__dict__["compiled"] == 0 and fill.__dict__["reused"] > 0, fill.getMessage()
    trusted_before = sorted(p.name for p in trusted.iterdir())
    replay_before = sorted(p.name for p in replay.iterdir())
    assert trusted_before and replay_before

    reference = tmp_path / "reference_solutions" / "prep_edit.py"
    reference.write_text(reference.read_text() + "# a comment: a new version, the same programs\n")
    caplog.clear()
    edited = ProblemBank(problems).problems["prep-edit"]
    assert not is_prepared(edited, settings)
    second = Preparer(settings).prepare_one(edited)
    assert second.status == "prepared", second
    (fill,) = [r for r in caplog.records if r.getMessage().startswith("replayed ")]
    assert fill.__dict__["compiled"] == 0 and fill.__dict__["reused"] > 0, fill.getMessage()
    assert sorted(p.name for p in trusted.iterdir()) == trusted_before  # the reference run compiled nothing new
    assert sorted(p.name for p in replay.iterdir()) == replay_before
    profiles = [json.loads(p.read_text()) for p in (settings.cache_dir / "reference" / "prep-edit").glob("*.json")]
    assert len(profiles) == 2
    assert {f"{k}-cache" for p in profiles for k in p["replay_keys"]} == set(replay_before)


def test_prepare_prune_removes_an_edited_problems_old_version_and_keeps_the_new_one_prepared(tmp_path: Path) -> None:
    """An edited problem is a new version with caches of its own; `gradax prepare --prune` prepares the new one
    and removes the old one's outputs and profile (files older than an hour: the old version's are set back
    here), and what it removed is nothing the new version needs: it is still prepared, nothing to compute."""
    problems = tmp_path / "problems"
    scaffold("prune-a", problems)
    path = problems / "prune-a.yaml"
    path.write_text(path.read_text() + LIMITS)
    data = tmp_path / "data"
    env = {**os.environ, "GRADAX_DATA_DIR": str(data), "GRADAX_PROBLEMS_DIR": str(problems)}
    first = subprocess.run([str(GRADAX), "prepare"], env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first
    old_files = sorted((data / "cache" / "reference" / "prune-a").glob("*.*[!k]"))  # not the lock files
    assert {p.suffix for p in old_files} == {".npz", ".json"}, old_files
    hours_ago = time.time() - 2 * 3600
    for item in old_files:
        os.utime(item, (hours_ago, hours_ago))

    reference = tmp_path / "reference_solutions" / "prune_a.py"
    reference.write_text(reference.read_text() + "# edited\n")  # a new version (the same programs)
    second = subprocess.run([str(GRADAX), "prepare", "--prune"], env=env, capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second
    assert second.stdout.splitlines()[0].startswith("prepared  prune-a"), second.stdout
    assert second.stdout.splitlines()[-1].startswith("pruned 2 files of old versions"), second.stdout
    assert not any(p.exists() for p in old_files)
    settings = GraderSettings(data_dir=data, problems_dir=problems)
    assert is_prepared(ProblemBank(problems).problems["prune-a"], settings)
    third = subprocess.run([str(GRADAX), "prepare", "--prune"], env=env, capture_output=True, text=True, timeout=600)
    assert third.stdout.splitlines()[0].startswith("cached    prune-a"), third.stdout
    assert third.stdout.splitlines()[-1].startswith("pruned 0 files of old versions (0.0 MB), 0 replay"), third.stdout
