"""Every row of ATTACKS.md as a real submission graded through `gradax grade --json`.

After each attack the test checks, besides the verdict: no file carrying the attack's marker appeared
on the host, no process carrying the marker is left, nothing reached a TCP/UDP listener the test opened
on 127.0.0.1, no value of the grader's environment appears in the report, and the reference solution
graded right afterwards is accepted. Attacks run against a test-only copy of `nnx-module-basics` with
a lower time limit and fewer hidden tests, so the suite stays in minutes.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from warm_grading import CliResult, grade_warm

from graders.compile_profile import replay_cache_dir
from graders.executor import ColdExecutor, Executor, make_executor
from graders.pool import WarmPool
from graders.problem import ProblemBank
from graders.settings import GraderSettings
from graders.supervision import default_pids

pytestmark = [pytest.mark.slow, pytest.mark.attack]

ROOT = Path(__file__).resolve().parent.parent
CASES = Path(__file__).parent / "attacks" / "cases"
PROBLEM = "nnx-module-basics"
REFERENCE = ROOT / "reference_solutions" / "nnx_module_basics.py"
# Limits of the attack copy. Time (CPU seconds, so load does not change when it fires): short enough for a
# quick suite, long enough for the hostile rows to reach what they attack; the wall-clock backstop (a
# sleeping row) is 3x that. Rows that must be accepted use the problem's own limits: they test
# containment, not limits (a load average of 19 was seen while writing this). Rows about a limit's
# message, and rows that only run until a limit stops them (a busy loop, a sleeper: 3x the limit of wall clock,
# 15 s at 5 s), use the small copy: each burns its whole CPU limit, on both paths, so one second, not two (what they
# prove does not depend on the limit's size).
# Memory: first-touch page faults in a fresh cgroup ran at 70-300 MB/s on the CI VM, so the problem's
# 2 GiB would race the time limit (the 2 GiB default is verified in tests/unit/test_sandbox.py).
TIME_LIMIT_S = 5
SMALL_TIME_LIMIT_S = 1
MEMORY_LIMIT_MB = 320
HOME = Path(os.path.expanduser("~"))
NUL = b"\0"
SKIP_DIRS = {".venv", ".git", "node_modules", ".mypy_cache", ".ruff_cache"}


def _problem_copy(base: Path, time_s: float | None, memory_mb: int | None) -> Path:
    """A copy of the problem with three tests (seeds 0, 7 and 11) and, optionally, other limits."""
    (base / "problems").mkdir(parents=True)
    (base / "reference_solutions").mkdir()
    data = yaml.safe_load((ROOT / "problems" / f"{PROBLEM}.yaml").read_text())
    if time_s is not None:
        data["limits"]["time_s"] = time_s
    if memory_mb is not None:
        data["limits"]["memory_mb"] = memory_mb
    data["tests"]["hidden"] = [t for t in data["tests"]["hidden"] if t["name"] in ("seed-7", "one-output")]
    # The rows test containment, and those that must be accepted answer without a module: no state checks
    # (forged model descriptions have their own attacks in tests/test_model_check_attacks.py).
    data["state_checks"] = False
    # A known mistake that only the state check rejects cannot be proven without it.
    data["known_mistakes"] = [m for m in data.get("known_mistakes", []) if m.get("rejected_by") != "state"]
    (base / "problems" / f"{PROBLEM}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (base / "reference_solutions" / REFERENCE.name).write_bytes(REFERENCE.read_bytes())
    return base / "problems"


@pytest.fixture(scope="session")
def attack_problems(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Problem dirs for the attacks (lowered limits), for the correct run after each (problem's limits), and
    for the rows about a limit's message (a 1 s CPU limit)."""
    base = tmp_path_factory.mktemp("attack-bank")
    return (_problem_copy(base / "attack", TIME_LIMIT_S, MEMORY_LIMIT_MB),
            _problem_copy(base / "check", None, None),
            _problem_copy(base / "small", SMALL_TIME_LIMIT_S, MEMORY_LIMIT_MB))


@dataclass
class Listener:
    """A TCP and a UDP socket on one 127.0.0.1 port; records anything that arrives."""

    port: int = 0
    received: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Listener:
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.tcp.settimeout(0.1)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.udp.bind(("127.0.0.1", self.port))
        except OSError:
            self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.1)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self.tcp.accept()
                self.received.append(f"tcp connection from {addr}")
                conn.close()
            except OSError:
                pass
            try:
                data, addr = self.udp.recvfrom(65536)
                self.received.append(f"udp datagram from {addr}: {data[:80]!r}")
            except OSError:
                pass

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self.tcp.close()
        self.udp.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener().start()
    yield lst
    lst.close()


def _names_with(marker: str, top: Path, max_depth: int | None = None) -> Iterator[Path]:
    """Every entry under `top` whose name carries `marker` (names are compared as strings: /tmp holds the suite's
    data dirs, tens of thousands of entries, walked after every row)."""
    top_depth = str(top).rstrip(os.sep).count(os.sep)
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in dirnames + filenames:
            if marker in name:
                yield Path(dirpath) / name
        if max_depth is not None and dirpath.rstrip(os.sep).count(os.sep) - top_depth >= max_depth:
            dirnames[:] = []


def marker_files(marker: str, data_dir: Path) -> list[Path]:
    """Files or links on the host whose name carries the marker (the attacks name what they write so)."""
    found = []
    for top, depth in ((Path("/tmp"), None), (ROOT, None), (data_dir, None), (Path("/var/tmp"), None),
                       (Path("/dev/shm"), None), (HOME, 2)):
        if top.exists():
            found += list(_names_with(marker, top, depth))
    return found


def marker_processes(marker: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(f"{entry}: {cmdline.replace(NUL, b' ')!r}")
    return found


@dataclass
class Attack:
    """One row: the case file, the verdict ATTACKS.md demands, and optional extra checks on the report."""

    case: str
    verdict: str
    check: Callable[[dict[str, Any], CliResult], None] | None = None
    content: Callable[[], bytes] | None = None
    small: bool = False  # graded with the 1 s CPU limit (rows about a limit and its message)
    # Aims at the host or what outlives a run (memory, disk, processes, paths): a correct answer graded right
    # after it must still be accepted on the cold path too. On the warm path every row is followed by one (the
    # zygote and its children are shared); a cold run shares nothing else with the next one, and each extra cold
    # grading costs a fresh Python importing jax (~2.5 CPU-s of a CPU-bound suite).
    host: bool = False
    waits: bool = False  # spends its time asleep until the wall-clock backstop: scheduled beside CPU-bound tests
    # What it attacks is the parent's judging or the harness's loading and sending, the same code on both paths
    # (comparison, result conversion, load errors): graded warm only, not again in a fresh Python (~2.5 CPU-s).
    # Rows that reach for descriptors, files, processes, memory or limits run on both paths.
    one_path: bool = False


def _check_killed_by(name: str, report: dict[str, Any], _: CliResult) -> None:
    """The signal the submission sent itself is the one the report names (a warm child's init used to drop it)."""
    assert f"killed by {name}" in (report["message"] or ""), report["message"]


def _check_forks(report: dict[str, Any], _: CliResult) -> None:
    messages = " ".join(t.get("message") or "" for t in report["tests"])
    assert "forked" in messages, report
    counts = [int(w) for w in messages.replace(":", " ").split() if w.isdigit()]
    assert counts and max(counts) < default_pids(), messages


def _check_capped_output(report: dict[str, Any], result: CliResult) -> None:
    assert len(report["stdout"]) <= 9 * 1024
    assert len(result.stdout) < 64 * 1024


def _check_result_channel(report: dict[str, Any], _: CliResult) -> None:
    assert "accepted" not in report["message"], report["message"]
    assert "result channel" in report["message"], report["message"]


def _check_shape_stage(report: dict[str, Any], _: CliResult) -> None:
    public = next(t for t in report["tests"] if t["public"])
    assert public["stage"] == "shape", public


def _check_env_leak(report: dict[str, Any], _: CliResult) -> None:
    public = next(t for t in report["tests"] if t["public"])
    assert "environ" in public["message"], public
    assert "HOME" in public["message"]  # the submission did read its (cleared) environment


def _check_network(report: dict[str, Any], _: CliResult) -> None:
    public = next(t for t in report["tests"] if t["public"])
    assert "ConnectionError" in public["message"], public
    # UDP to 127.0.0.1 is "sent" on the sandbox's own loopback; the listener check shows nothing arrived.
    assert "CONNECTED" not in public["message"], public
    assert "dns:" in public["message"] and "example.com" not in public["message"].split("dns:")[1][:20]


def _check_disk(report: dict[str, Any], _: CliResult) -> None:
    public = next(t for t in report["tests"] if t["public"])
    assert "File too large" in public["message"] or "No space left" in public["message"], public


def _check_no_core(report: dict[str, Any], _: CliResult) -> None:
    for top in (ROOT, Path("/tmp")):
        assert not [p for p in top.iterdir() if p.name.startswith("core") and p.stat().st_mtime > time.time() - 60]


def _check_signature(report: dict[str, Any], _: CliResult) -> None:
    assert "argument" in report["message"] and "module_basics_forward(seed, x, features)" in report["message"]


def _check_load_line(report: dict[str, Any], _: CliResult) -> None:
    assert report["line"] == 2, report


def _check_channel_blamed(report: dict[str, Any], _: CliResult) -> None:
    """Rows 31-32: blamed on the submission at once, cheaply for the parent, nothing forged in the report."""
    assert "wrote to the grader's result channel" in report["message"], report["message"]
    assert "not your fault" not in report["message"]
    assert report["timings"]["run_ms"] < 5000, report["timings"]
    assert report["timings"]["parent_read_cpu_ms"] < 2000, report["timings"]
    for test in report["tests"]:
        assert test["duration_ms"] is None or isinstance(test["duration_ms"], float), test


def _check_cpu_message(report: dict[str, Any], _: CliResult) -> None:
    """The time limit judges CPU time, and the message says the limit and what was used."""
    limit = report["limits"]["cpu_s"]
    assert report["usage"]["cpu_s"] > limit, report["usage"]
    assert re.search(rf"used \d+\.\d s of CPU time, the limit is {limit:g} s", report["message"]), report["message"]


def _check_wall_message(report: dict[str, Any], _: CliResult) -> None:
    """A sleeper uses no CPU: the wall-clock backstop stops it, and the message says so."""
    assert report["usage"]["cpu_s"] < 1.0, report["usage"]
    assert report["usage"]["wall_s"] >= report["limits"]["wall_s"], report
    assert "sleeping or waiting" in report["message"]
    assert f"at most {report['limits']['wall_s']:g} s" in report["message"], report["message"]


def _check_wall_message_at_load(report: dict[str, Any], result: CliResult) -> None:
    """Stopped at the wall-clock limit while the file was loading: the limit is named, and the grader's own SIGKILL
    at that limit is not put down to the file."""
    _check_wall_message(report, result)
    assert report["message"].startswith("Time limit exceeded while your file was being loaded"), report["message"]
    assert "stopped the grading process" not in report["message"], report["message"]


def _check_memory_message(report: dict[str, Any], _: CliResult) -> None:
    assert f"the limit is {MEMORY_LIMIT_MB} MiB" in report["message"], report["message"]
    assert re.search(r"reached \d+ MiB", report["message"]), report["message"]
    assert report["usage"]["memory_peak_mb"] <= MEMORY_LIMIT_MB + 1


def _check_refused_allocation(report: dict[str, Any], _: CliResult) -> None:
    """Refused at once, before the memory is used: the message says what refused it, and the limit."""
    public = next(t for t in report["tests"] if t["public"])
    refused = "memory limit exceeded during this test: JaxRuntimeError: RESOURCE_EXHAUSTED"
    assert public["message"].startswith(refused), public["message"]
    assert f"the limit is {MEMORY_LIMIT_MB} MiB" in public["message"], public["message"]
    assert report["usage"]["memory_peak_mb"] < MEMORY_LIMIT_MB / 2, report["usage"]


def _check_output_message(report: dict[str, Any], result: CliResult) -> None:
    _check_cheap(report, result)
    assert re.search(r"returned an array of [\d,]+ bytes; the output limit is [\d,]+ bytes", report["message"]), (
        report["message"])


def _check_printed(report: dict[str, Any], result: CliResult) -> None:
    """Issue 17: a flood of prints shows as a time limit that says what was printed, not "stopped from outside"."""
    _check_cpu_message(report, result)
    assert "it printed" in report["message"] and "MB" in report["message"], report["message"]
    assert report["usage"]["stdout_bytes"] > 1_000_000 and len(report["stdout"]) <= 9 * 1024


def _check_compile_bomb(report: dict[str, Any], result: CliResult) -> None:
    """Row 37: stopped by its CPU limit (not the wall-clock backstop), inside its memory limit."""
    _check_cpu_message(report, result)
    assert "sleeping or waiting" not in report["message"]
    assert report["usage"]["wall_s"] < report["limits"]["wall_cap_s"], report["usage"]
    assert report["usage"]["memory_peak_mb"] <= MEMORY_LIMIT_MB + 1, report["usage"]


def _check_cheap(report: dict[str, Any], _: CliResult) -> None:
    assert report["timings"].get("memory_peak_mb", 0) < MEMORY_LIMIT_MB, report["timings"]


ATTACKS = [
    Attack("01_busy_loop", "time_limit_exceeded", _check_cpu_message, small=True),
    Attack("02_sleep_ignores_signals", "time_limit_exceeded", _check_wall_message, small=True, waits=True),
    Attack("02b_stops_itself_at_import", "time_limit_exceeded", _check_wall_message_at_load, small=True, waits=True),
    Attack("03_xla_while_loop", "time_limit_exceeded", _check_cpu_message, small=True),
    Attack("04_catch_base_exception", "time_limit_exceeded", small=True),
    Attack("05a_os_exit_in_call", "runtime_error"),
    Attack("05b_sys_exit_at_import", "runtime_error"),
    Attack("05c_sigkill_itself_at_import", "runtime_error", lambda r, c: _check_killed_by("SIGKILL", r, c)),
    Attack("05d_raises_sigterm_in_call", "runtime_error", lambda r, c: _check_killed_by("SIGTERM", r, c)),
    Attack("06_custom_base_exception", "runtime_error"),
    Attack("07_fork_many_children", "runtime_error", _check_forks, host=True),
    Attack("08_setsid_daemon", "accepted", host=True),
    Attack("09_allocate_8gib", "memory_limit_exceeded", _check_memory_message, host=True),
    Attack("09b_ask_for_terabytes", "memory_limit_exceeded", _check_refused_allocation, one_path=True),
    Attack("10_huge_result", "output_limit_exceeded", _check_output_message),
    Attack("11_print_200mb", "accepted", _check_capped_output, host=True),
    Attack("11b_print_lines_until_the_limit", "time_limit_exceeded", _check_printed, small=True),
    Attack("12_fake_report_everywhere", "runtime_error", _check_result_channel),
    Attack("13_monkeypatch_compare", "wrong_answer", one_path=True),
    Attack("14a_ndarray_subclass", "wrong_answer", one_path=True),
    Attack("14b_array_protocol_runs_code", "runtime_error", one_path=True),
    Attack("15_object_pickle_string", "runtime_error", one_path=True),
    Attack("16_scalar_for_array", "wrong_answer", _check_shape_stage, one_path=True),
    Attack("17_nan_inf", "wrong_answer", one_path=True),
    Attack("18_find_reference", "wrong_answer"),
    Attack("19_scan_gc_frames", "wrong_answer"),
    Attack("20_leak_environment", "runtime_error", _check_env_leak),
    Attack("21_network", "runtime_error", _check_network),
    Attack("22_write_host_paths", "accepted", host=True),
    Attack("23_fill_disk", "runtime_error", _check_disk, host=True),
    Attack("24_kill_everything", "runtime_error", host=True),
    Attack("25_segfault_recursion", "runtime_error", _check_no_core, host=True),
    Attack("26_busy_threads", "time_limit_exceeded", small=True, host=True),
    Attack("27_plant_symlink_fifo", "accepted", host=True),
    Attack("28a_syntax_error", "syntax_error", _check_load_line, one_path=True),
    Attack("28b_missing_function", "invalid_submission", one_path=True),
    Attack("28c_wrong_signature", "invalid_submission", _check_signature, one_path=True),
    Attack("28d_empty", "invalid_submission", one_path=True),
    Attack("28e_ten_megabytes", "invalid_submission", one_path=True,
           content=lambda: b"def module_basics_forward(seed, x, features):\n    return x\n" + b"#" * 10_000_000),
    Attack("28f_not_utf8", "invalid_submission", one_path=True,
           content=lambda: b"def module_basics_forward(seed, x, features):\n    return x  # \xff\xfe\xc3\x28\n"),
    Attack("29_jax_config", "accepted"),
    Attack("31a_forged_missing_field", "runtime_error", _check_channel_blamed),
    Attack("31b_forged_wrong_type", "runtime_error", _check_channel_blamed),
    Attack("31c_forged_valid_result", "runtime_error", _check_channel_blamed),
    Attack("32a_deep_json_header", "runtime_error", _check_channel_blamed),
    Attack("32b_declares_2_32_arrays", "runtime_error", _check_channel_blamed),
    Attack("32c_huge_header", "runtime_error", _check_channel_blamed),
    Attack("36_socket_families", "accepted"),
    Attack("37_compile_bomb", "time_limit_exceeded", _check_compile_bomb, small=True),
]


def render(case: str, marker: str, port: int, data_dir: Path, **extra: str) -> bytes:
    text = (CASES / f"{case}.py").read_text()
    values = {"__MARKER__": marker, "__PORT__": str(port), "__ROOT__": str(ROOT), "__HOME__": str(HOME),
              "__DATA__": str(data_dir), **extra}
    for key, value in values.items():
        text = text.replace(key, value)
    return text.encode()


class Run:
    """Grades submissions against the attack problem with a secret in the grader's environment.

    In this test process (tests/warm_grading.py: the report is the JSON `gradax grade --json` prints, the exit
    code the one it returns). Cold: a fresh sandboxed Python per submission. Warm: a child of this test worker's
    warm pool (tests/conftest.py warm_pool), the zygote that graded the attacks before this one, as in the
    server. Without an executor: through `gradax grade --json` itself (its own process and environment)."""

    def __init__(self, gradax: Callable[..., CliResult], problems: tuple[Path, Path, Path], tmp_path: Path,
                 pool: str = "cold", executor: Executor | None = None, secret: str | None = None,
                 settings: GraderSettings | None = None):
        self.gradax = gradax
        self.pool = pool
        self.executor = executor  # None: through `gradax grade`
        self.settings = settings
        self.problems, self.check_problems, self.small_problems = problems
        self.tmp_path = tmp_path
        self.secret = secret or f"gxsecret{uuid.uuid4().hex}"
        self._banks: dict[Path, ProblemBank] = {}

    def grade(self, code: bytes, name: str = "submission.py", problems: Path | None = None
              ) -> tuple[dict[str, Any], CliResult]:
        if self.executor is not None:
            problems = problems or self.problems
            bank = self._banks.get(problems) or self._banks.setdefault(problems, ProblemBank(problems))
            return grade_warm(self.executor, bank, PROBLEM, code, self.settings)
        path = self.tmp_path / name
        path.write_bytes(code)
        result = self.gradax("grade", PROBLEM, str(path), "--json", "--problems", str(problems or self.problems),
                             env={"GRADAX_TEST_SECRET": self.secret, "GRADAX_SANDBOX": "bwrap",
                                  "GRADAX_POOL": self.pool})
        assert result.stdout, result.stderr
        return result.json(), result

    def assert_no_secret(self, result: CliResult) -> None:
        assert self.secret not in result.stdout
        assert self.secret not in result.stderr

    def assert_correct_accepted(self) -> None:
        report, result = self.grade(REFERENCE.read_bytes(), "correct.py", self.check_problems)
        assert report["verdict"] == "accepted", json.dumps(report, indent=1)[:3000]
        assert result.returncode == 0


@pytest.fixture(params=["cold", "warm"])
def run(request: pytest.FixtureRequest, gradax: Callable[..., CliResult], attack_problems: tuple[Path, Path, Path],
        tmp_path: Path, grader_secret: str, data_dir: Path) -> Run:
    """Every attack twice (but the `one_path` rows): in a fresh sandboxed Python, and in a child of the warm pool's
    zygote."""
    if request.param == "cold":
        # As the CLI and a pool's fallback grade cold: with the replay cache bound read-only (when it exists).
        settings = GraderSettings(data_dir=data_dir, sandbox="bwrap", pool="cold")
        cold = make_executor(settings, pool="cold")
        assert isinstance(cold, ColdExecutor) and cold.sandboxed, cold
        return Run(gradax, attack_problems, tmp_path, executor=cold, secret=grader_secret, settings=settings)
    pool = request.getfixturevalue("warm_pool")
    assert isinstance(pool, WarmPool), f"the warm half needs the warm pool, got {pool!r}"
    return Run(gradax, attack_problems, tmp_path, pool="warm", executor=pool, secret=grader_secret)


def _rows() -> list[Any]:
    return [pytest.param(a, path, id=f"{path}-{a.case}", marks=[pytest.mark.waits] if a.waits else [])
            for path in ("cold", "warm") for a in ATTACKS if path == "warm" or not a.one_path]


@pytest.mark.parametrize(("attack", "run"), _rows(), indirect=["run"])
def test_attack(attack: Attack, run: Run, listener: Listener, data_dir: Path) -> None:
    marker = f"gxatk{uuid.uuid4().hex[:12]}"
    code = attack.content() if attack.content else render(attack.case, marker, listener.port, data_dir)
    problems = (run.check_problems if attack.verdict == "accepted"
                else run.small_problems if attack.small else run.problems)
    report, result = run.grade(code, problems=problems)
    assert report["verdict"] == attack.verdict, json.dumps(report, indent=1)[:4000]
    assert result.returncode == (0 if attack.verdict == "accepted" else 1)
    if attack.check:
        attack.check(report, result)
    assert marker_processes(marker) == []
    assert marker_files(marker, data_dir) == []
    assert listener.received == []
    run.assert_no_secret(result)
    if run.pool == "warm" or attack.host:
        run.assert_correct_accepted()


def test_the_host_scan_finds_what_a_row_would_leave(tmp_path: Path, data_dir: Path) -> None:
    """The checks after every row can fail: a file, a directory or a link named with the marker in /tmp (at any
    depth), the project tree or the data dir is found; nothing is found for another marker."""
    marker = f"gxatk{uuid.uuid4().hex[:12]}"
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    planted = [deep / f"x-{marker}.txt", tmp_path / f"dir-{marker}", data_dir / f"link-{marker}"]
    planted[0].write_text("x")
    planted[1].mkdir()
    planted[2].symlink_to("/nonexistent")
    try:
        assert set(marker_files(marker, data_dir)) == set(planted)  # the data dir may lie in /tmp: found twice
        assert marker_files(f"gxatk{uuid.uuid4().hex[:12]}", data_dir) == []
    finally:
        planted[2].unlink()


@pytest.mark.parametrize("pool", ["cold", "warm"])
def test_gradax_grade_itself(pool: str, gradax: Callable[..., CliResult], attack_problems: tuple[Path, Path, Path],
                             tmp_path: Path, listener: Listener, data_dir: Path) -> None:
    """The rows above grade in this test process; `gradax grade --json` itself (cold, or GRADAX_POOL=warm: a zygote
    and a child of its own for one file), with a secret in its environment: a row that reads its environment finds
    neither the secret nor the CLI's variables, and the correct answer is accepted."""
    run = Run(gradax, attack_problems, tmp_path, pool=pool)  # no executor: through the CLI
    leak = next(a for a in ATTACKS if a.case == "20_leak_environment")
    report, result = run.grade(render(leak.case, "gxatkcli", listener.port, data_dir))
    assert report["verdict"] == leak.verdict, json.dumps(report, indent=1)[:4000]
    assert result.returncode == 1
    assert leak.check is not None
    leak.check(report, result)
    run.assert_no_secret(result)
    report, result = run.grade(REFERENCE.read_bytes(), "correct.py", run.check_problems)
    assert report["verdict"] == "accepted" and result.returncode == 0, json.dumps(report, indent=1)[:3000]
    run.assert_no_secret(result)
    if pool == "warm":
        assert "graded by the warm pool" in result.stderr, result.stderr
    else:
        assert "warm pool" not in result.stderr, result.stderr


def test_two_submissions_cannot_see_each_other(run: Run, listener: Listener, data_dir: Path) -> None:
    """Row 30: two submissions at once each look for the other's files and processes."""
    a, b = f"gxatkA{uuid.uuid4().hex[:10]}", f"gxatkB{uuid.uuid4().hex[:10]}"
    codes = [render("30_read_other_submission", a, listener.port, data_dir, __SELF__=a, __OTHER__=b),
             render("30_read_other_submission", b, listener.port, data_dir, __SELF__=b, __OTHER__=a)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda i: run.grade(codes[i], f"sub{i}.py", run.check_problems), range(2)))
    for report, result in results:
        assert report["verdict"] == "accepted", json.dumps(report, indent=1)[:3000]
        run.assert_no_secret(result)
    for marker in (a, b):
        assert marker_files(marker, data_dir) == []
        assert marker_processes(marker) == []
    assert listener.received == []


def test_concurrent_hostile_and_correct(run: Run, listener: Listener, data_dir: Path) -> None:
    """A busy loop, a fork bomb and a correct submission graded at once each get their own verdict."""
    marker = f"gxatk{uuid.uuid4().hex[:12]}"
    jobs = [
        (render("01_busy_loop", marker, listener.port, data_dir), "time_limit_exceeded"),
        (render("07_fork_many_children", marker, listener.port, data_dir), "runtime_error"),
        (REFERENCE.read_bytes(), "accepted"),
    ]
    # The correct one is graded with the problem's own limits: two hostile runs share its 2 cores.
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda i: run.grade(jobs[i][0], f"job{i}.py", run.check_problems if i == 2 else None),
                                range(3)))
    for (_, want), (report, result) in zip(jobs, results, strict=True):
        assert report["verdict"] == want, json.dumps(report, indent=1)[:3000]
        run.assert_no_secret(result)
    assert marker_processes(marker) == []
    assert marker_files(marker, data_dir) == []
    assert listener.received == []


def test_two_submissions_cannot_talk_through_a_pty_or_shared_memory(run: Run, listener: Listener,
                                                                     data_dir: Path) -> None:
    """Row 35: graded at once, each opens a pty, a /dev/shm file, a System V segment and an abstract socket
    under a name both know, and looks for the other's. (One warm pool grading both at once, the case the
    warm children's own devpts is for, is tests/test_pool.py::test_children_graded_at_once_cannot_talk.)"""
    a, b = f"gxatkA{uuid.uuid4().hex[:10]}", f"gxatkB{uuid.uuid4().hex[:10]}"
    pair = uuid.uuid4().hex[:8]
    codes = [render("35_pty_shm_channel", a, listener.port, data_dir, __SELF__=a, __OTHER__=b, __PAIR__=pair),
             render("35_pty_shm_channel", b, listener.port, data_dir, __SELF__=b, __OTHER__=a, __PAIR__=pair)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda i: run.grade(codes[i], f"sub{i}.py", run.check_problems), range(2)))
    for report, result in results:
        assert report["verdict"] == "accepted", json.dumps(report, indent=1)[:3000]
        run.assert_no_secret(result)
    for marker in (a, b):
        assert marker_files(marker, data_dir) == []
        assert marker_processes(marker) == []


def _busy_machine(processes: int) -> list[subprocess.Popen[bytes]]:
    """Busy loops outside the sandbox, at normal priority: the machine a busy server is."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]


def test_a_correct_answer_on_a_busy_machine_is_judged_on_its_own_cpu_time(run: Run, listener: Listener,
                                                                          data_dir: Path) -> None:
    """Row 38: a correct answer that is slow to compile and computes at import (~2.5-3.5 CPU-s, of a 5 s
    limit), graded while 4 busy loops per core compete for the CPU: it takes longer than its limit on the
    wall clock (it also waits 3.5 s, so it does on a machine whose scheduler favours the grader), and is
    accepted."""
    # A cold run pays ~1.2 CPU-s more (backend start, first uses): fewer padding operations there. Their compile took
    # 3.3 CPU-s instead of ~1.5 on a slow CI machine (5.1 CPU-s in all): 200, not 350, keeps it well under the limit.
    ops = "100" if run.pool == "cold" else "200"
    code = render("38_slow_compile_correct", "gxatk38", listener.port, data_dir, __OPS__=ops)
    busy = _busy_machine(4 * (os.cpu_count() or 1))
    try:
        report, result = run.grade(code)
        run.assert_no_secret(result)
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    assert report["verdict"] == "accepted", json.dumps(report, indent=1)[:3000]
    usage, limits = report["usage"], report["limits"]
    assert usage["cpu_s"] < limits["cpu_s"], usage
    # The point of the row: on the wall clock this run took longer than its limit (a wall-clock limit
    # would have called a correct answer a time limit), and that was not held against it.
    assert usage["wall_s"] > limits["cpu_s"], usage


# A reference that jits a function of its own: the trusted side compiles it (reference run, profile
# recording). Before the replay cache, that program was in the cache every warm child could read.
JITTED_REFERENCE = '''"""nnx-module-basics' reference, its forward pass jitted under a name no library has."""
import jax
import jax.numpy as jnp
from flax import nnx


class Projection(nnx.Module):
    def __init__(self, in_features, out_features, *, rngs):
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (in_features, out_features))
                                * (1.0 / jnp.sqrt(in_features)))


@jax.jit
def gradax_reference_only_helper(x, kernel):
    return x @ kernel


def module_basics_forward(seed, x, features):
    model = Projection(x.shape[-1], int(features), rngs=nnx.Rngs(int(seed)))
    return gradax_reference_only_helper(x, model.kernel[...])
'''


def test_warm_children_see_no_program_compiled_from_the_reference(run: Run, listener: Listener, data_dir: Path,
                                                                  tmp_path_factory: pytest.TempPathFactory) -> None:
    """Row 34: the submission deserializes every compile-cache entry it can read and looks for the reference's
    own (jitted) function in the programs. Warm, and cold once the replay cache holds programs: it reads the replay
    cache (bound read-only), finds nothing of the reference."""
    # The longest CPU limit a problem may have: the search deserializes every program in the replay cache, which the
    # suite's other tests fill (all 24 problems' after the bank's check); a slow machine took 20 CPU-s when it
    # searched on each of the 7 tests (it now searches once).
    problems = _problem_copy(tmp_path_factory.mktemp("row34"), 30, None)
    (problems.parent / "reference_solutions" / REFERENCE.name).write_text(JITTED_REFERENCE)
    marker = f"gxatk{uuid.uuid4().hex[:12]}"
    filled = any(replay_cache_dir(data_dir / "cache").glob("*-cache"))  # before: other tests may fill it meanwhile
    report, result = run.grade(render("34_read_compile_cache", marker, listener.port, data_dir), problems=problems)
    assert report["verdict"] == "accepted", json.dumps(report, indent=1)[:4000]
    read = re.search(r"compile cache: (\d+) programs read, reference names found: \[\]", report["stdout"])
    assert read is not None, report["stdout"]
    if run.pool == "warm" or filled:  # the replay cache is mounted and readable: the search did look at programs
        assert int(read.group(1)) > 0, report["stdout"]
    run.assert_no_secret(result)
    assert marker_files(marker, data_dir) == []
