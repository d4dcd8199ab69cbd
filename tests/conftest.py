"""Shared fixtures: the project's paths, a data dir shared by test workers, and a CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import SharedServer, running_server, server_env
from scheduling import order_and_group
from small_bank import SmallBank, make_small_bank
from warm_grading import CliResult

from graders.executor import Executor
from graders.settings import GraderSettings

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "problems"
GRADAX = Path(sys.executable).parent / "gradax"
# A server started by a test (in process or `gradax serve`, which inherits this) does not prepare the whole
# real bank in the background (minutes of trusted runs competing with the suite); the tests of background
# preparation turn it on for banks of their own (tests/api/test_preparation.py, tests/browser/test_waiting.py).
os.environ.setdefault("GRADAX_PREPARE_IN_BACKGROUND", "false")
# One spare warm child per hot problem, not two: a test's server grades a few submissions and stops, and each
# child it warms and never uses costs 0.3-1 CPU-s of a CPU-bound suite (the 2 cores are 90-99 % busy throughout).
# The pool's own tests set their prefork explicitly (tests/test_pool.py).
os.environ.setdefault("GRADAX_POOL_PREFORK", "1")
# One spare child of a prepared problem in all, not one per problem (a server keeps up to 32 on a big machine): a
# test's server grades a few problems, and every spare it warms and never uses costs CPU the suite does not have.
os.environ.setdefault("GRADAX_POOL_SPARES", "1")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data dir for the whole run (all xdist workers), so reference outputs are computed once."""
    shared = tmp_path_factory.getbasetemp().parent / "gradax-data"
    shared.mkdir(exist_ok=True)
    return shared


@pytest.fixture(scope="session")
def small_bank(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> SmallBank:
    """Six tiny problems with tiny limits, prepared in the shared data dir (tests/small_bank.py)."""
    return make_small_bank(tmp_path_factory.mktemp("small-bank"), data_dir)


@pytest.fixture(scope="session")
def grader_secret() -> Iterator[str]:
    """A value in this test process's environment (GRADAX_TEST_SECRET), so in the grader's: no report may show it
    (the warm pool's zygote starts with it; tests/test_attacks.py checks every report and log for it)."""
    secret = f"gxsecret{uuid.uuid4().hex}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADAX_TEST_SECRET", secret)
        yield secret


@pytest.fixture(scope="session")
def warm_pool(data_dir: Path, grader_secret: str) -> Iterator[Executor]:
    """One warm pool per test process for the tests that grade many submissions in-process (golden cases, the
    whole bank's check, the warm half of the attack suite): a warm child each instead of a fresh Python that
    imports jax (~2-3 CPU-s). Four children at most (the attack suite grades three at once), none forked ahead
    of a submission: these tests move from problem to problem, and a child kept ready for a problem whose last
    case was graded is thrown away (the golden cases with one kept ready: 147 children forked for 108 cases, 197 s
    and 251 CPU-s; with none: 108, 173 s and 233 CPU-s, side by side). tests/test_pool.py covers forking ahead."""
    from graders.executor import make_executor

    pool = make_executor(GraderSettings(data_dir=data_dir, pool="warm", pool_size=4, pool_prefork=0))
    yield pool
    pool.close()




@pytest.fixture(params=["cold", "warm"])
def cold_or_warm(request: pytest.FixtureRequest, data_dir: Path) -> tuple[Executor, GraderSettings]:
    """Each path a submission is graded on, with the settings to grade with: a fresh sandboxed Python per submission,
    and a child of this test worker's warm pool (`warm_pool`). A test may pick one with
    `@pytest.mark.parametrize("cold_or_warm", ["warm"], indirect=True)`."""
    if request.param == "cold":
        from graders.executor import make_executor

        settings = GraderSettings(data_dir=data_dir, sandbox="bwrap", pool="cold")
        return make_executor(settings, pool="cold"), settings
    pool = request.getfixturevalue("warm_pool")
    return pool, pool.settings


@pytest.fixture
def gradax(data_dir: Path):  # type: ignore[no-untyped-def]
    """Run the real `gradax` console script with a given environment."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> CliResult:
        full_env = {**os.environ, "GRADAX_DATA_DIR": str(data_dir), **(env or {})}
        proc = subprocess.run([str(GRADAX), *args], capture_output=True, text=True, env=full_env,
                              timeout=timeout, cwd=ROOT)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory, data_dir: Path):  # type: ignore[no-untyped-def]
    """One `gradax serve` for the browser and student-CLI tests of a test worker (starting one costs seconds);
    tests keep apart by using users of their own. The warm pool: many gradings, each without a cold jax import
    (on a loaded 2-core machine a cold start now and then turns a correct submission into a time limit)."""
    workdir = tmp_path_factory.mktemp("shared-server")
    # A copy of the bank: an instructor's upload in a test writes there, never into the tree the other tests
    # (and another worker's whole-bank check) read.
    for name in ("problems", "reference_solutions"):
        shutil.copytree(ROOT / name, workdir / "bank" / name, ignore=shutil.ignore_patterns("__pycache__"))
    pool = {"GRADAX_POOL": os.environ.get("GRADAX_BROWSER_POOL", "warm"),
            "GRADAX_PROBLEMS_DIR": str(workdir / "bank" / "problems")}
    with running_server(workdir, data_dir, **pool) as base:
        yield SharedServer(base, workdir, server_env(workdir, data_dir, **pool))


def pytest_configure(config: pytest.Config) -> None:
    # The xdist controller keeps the order the workers collected (tests/scheduling.py: longest units first);
    # by default it would re-sort the units by how many tests each has.
    if config.getoption("dist", "no") == "loadgroup" and not hasattr(config, "workerinput"):
        config.option.loadscopereorder = False


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order_and_group(config, items)
