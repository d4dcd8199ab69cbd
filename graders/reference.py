"""The trusted reference runner: expected outputs and known-mistake outputs, computed once per version.

The reference solution and the known mistakes are trusted instructor code. They run in a child
process of their own (never in a student's), and their outputs are cached on disk keyed by a hash of
the problem file, the reference file, the library versions and the harness protocol.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graders import child_events as ev
from graders.cases import CaseInput
from graders.child_events import ChildMessage
from graders.compare import Output
from graders.filelock import file_lock
from graders.jax_env import xla_flags
from graders.model_checks import ProbeReport, probe_request
from graders.probe_schema import Probes
from graders.problem import LoadedProblem
from graders.request import build_request
from graders.sandbox import run_harness
from graders.supervision import ChildOutcome, SandboxLimits

if TYPE_CHECKING:
    from graders.compile_profile import RecordedProfile

log = logging.getLogger("gradax.reference")

CACHE_FORMAT = 6  # 2: leaves carry their own dtype name (bfloat16); 3: probes (model state, checks); 4: Dropout count;
# 5: the layers in the order they were built; 6: and the Flax class of each
LIBRARIES = ("jax", "jaxlib", "flax", "optax", "numpy")
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


# The least time a trusted run of a problem's programs gets (each has its problem's time limit on top of it).
TRUSTED_RUN_MIN_S = 120.0


class ReferenceError(Exception):
    """The reference solution could not produce outputs: the problem is broken, not the student."""


@dataclass
class ProgramOutputs:
    """What one trusted program produced on each test: an Output, or the error message it raised."""

    load_error: str | None = None
    outputs: dict[int, Output] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)
    probes: dict[int, ProbeReport] = field(default_factory=dict)


@dataclass
class ReferenceOutputs:
    key: str
    reference: ProgramOutputs
    mistakes: dict[str, ProgramOutputs]
    duration_ms: float = 0.0
    # The compile profile when it was recorded by the run that computed these outputs (`get(..., record_profile=True)`);
    # never stored with them (graders/compile_profile.py stores profiles).
    profile: RecordedProfile | None = None

    @property
    def builds_model(self) -> bool:
        """Whether the reference built an nnx.Module on some test (state checks are on for it by default). A model
        that only exists inside a transform (`nnx.vmap` of a constructor) does not count: its state is not checked."""
        return any(r.probes.state is not None and r.probes.state.roots and not r.probes.state.traced
                   for r in self.reference.probes.values())


def library_versions() -> dict[str, str]:
    return dict(_installed_versions())


@functools.cache
def _installed_versions() -> tuple[tuple[str, str], ...]:
    # Read once per process: importlib.metadata scans site-packages for each name (~1.7 ms for the five), and
    # `cache_key` runs several times per grading (reference outputs, compile profile, preparation checks). Libraries
    # upgraded under a running server take a restart anyway: its warm pool imported the old ones.
    return tuple((name, importlib.metadata.version(name)) for name in LIBRARIES)


def cache_key(loaded: LoadedProblem) -> str:
    h = hashlib.sha256()
    h.update(loaded.outputs_hash.encode())
    h.update(json.dumps(library_versions(), sort_keys=True).encode())
    h.update(f"format={CACHE_FORMAT}".encode())
    h.update(f"xla_flags={xla_flags()}".encode())  # what the trusted runs and the children compile with
    return h.hexdigest()[:32]


def reference_probes(loaded: LoadedProblem) -> dict[str, Any] | None:
    """What the trusted runs describe: the state whenever a problem may check it (auto or on), every check."""
    return probe_request(loaded.problem, state=loaded.problem.state_checks is not False)


def outputs_from_messages(messages: list[ChildMessage], n_programs: int) -> list[ProgramOutputs]:
    programs = [ProgramOutputs() for _ in range(n_programs)]
    for msg in messages:
        event = msg.event
        if isinstance(event, ev.LoadSyntaxError | ev.LoadInvalid):
            programs[event.program].load_error = f"{event.status}: {event.message}"
        elif isinstance(event, ev.LoadError):
            programs[event.program].load_error = f"error: {event.message}\n{event.traceback}"
        elif isinstance(event, ev.TestOk):
            output = Output(event.tree.model_dump(exclude_none=True), msg.arrays)
            programs[event.program].outputs[event.index] = output
            if event.probes is not None:
                programs[event.program].probes[event.index] = ProbeReport(event.probes, msg.arrays)
        elif isinstance(event, ev.TestError):
            programs[event.program].errors[event.index] = f"{event.error_type}: {event.message}"
        elif isinstance(event, ev.TestRejected):
            programs[event.program].errors[event.index] = f"{event.status}: {event.message}"
    return programs


class ReferenceCache:
    """Reference and known-mistake outputs on disk under `<cache_dir>/reference/`."""

    def __init__(self, cache_dir: Path):
        self.directory = cache_dir / "reference"
        self._memory: dict[str, ReferenceOutputs] = {}

    def _path(self, loaded: LoadedProblem, key: str) -> Path:
        return self.directory / loaded.id / f"{key}.npz"

    def is_stored(self, loaded: LoadedProblem) -> bool:
        """Whether this version's outputs are in memory or on disk (a file check; not validated)."""
        key = cache_key(loaded)
        return key in self._memory or self._path(loaded, key).is_file()

    def get(self, loaded: LoadedProblem, cases: list[CaseInput], *, record_profile: bool = False) -> ReferenceOutputs:
        """The outputs, from memory, the file, or a trusted run; with `record_profile`, a run made now also
        records the reference's compile profile (`.profile`; None when the outputs were already computed)."""
        key = cache_key(loaded)
        if key in self._memory:
            return self._memory[key]
        with _lock_for(key):
            if key in self._memory:
                return self._memory[key]
            path = self._path(loaded, key)
            result = self._load(path, key, loaded) if path.exists() else None
            if result is None:
                # Another process (a server, `gradax prepare`) may be computing the same outputs: one
                # computes, the others wait for its file instead of running the reference again.
                with file_lock(path.with_suffix(".lock")):
                    result = self._load(path, key, loaded) if path.exists() else None
                    if result is None:
                        result = compute(loaded, cases, key, record_profile=record_profile,
                                         cache_dir=self.directory.parent)
                        self._store(path, result, loaded)
            self._memory[key] = result
            return result

    def _store(self, path: Path, result: ReferenceOutputs, loaded: LoadedProblem) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {"key": result.key, "duration_ms": result.duration_ms, "programs": {}}
        named = {"__reference__": result.reference, **result.mistakes}
        for p_index, (name, prog) in enumerate(named.items()):
            entry: dict[str, Any] = {"load_error": prog.load_error, "errors": prog.errors, "outputs": {},
                                     "arrays": {}, "probes": {}}
            for t_index, out in prog.outputs.items():
                entry["outputs"][t_index] = out.tree
                entry["arrays"][t_index] = len(out.leaves)  # the outputs' and the probes' arrays
                for l_index, leaf in enumerate(out.leaves):
                    arrays[f"p{p_index}_t{t_index}_l{l_index}"] = leaf
            for t_index, report in prog.probes.items():
                entry["probes"][t_index] = report.probes.model_dump(mode="json")
            entry["index"] = p_index
            meta["programs"][name] = entry
        arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        # Write then rename, so a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        os.replace(tmp, path)

    def _load(self, path: Path, key: str, loaded: LoadedProblem) -> ReferenceOutputs | None:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["__meta__"]).decode())
                programs: dict[str, ProgramOutputs] = {}
                for name, entry in meta["programs"].items():
                    prog = ProgramOutputs(entry["load_error"], {}, {int(k): v for k, v in entry["errors"].items()})
                    for t_key, tree in entry["outputs"].items():
                        t_index = int(t_key)
                        n_arrays = int(entry["arrays"][t_key])
                        leaves = tuple(data[f"p{entry['index']}_t{t_index}_l{i}"] for i in range(n_arrays))
                        prog.outputs[t_index] = Output(tree, leaves)
                    for t_key, raw in entry["probes"].items():
                        t_index = int(t_key)
                        probes = Probes.model_validate(raw)
                        prog.probes[t_index] = ProbeReport(probes, prog.outputs[t_index].leaves)
                    programs[name] = prog
        except (OSError, ValueError, KeyError):  # pydantic's ValidationError is a ValueError
            return None
        reference = programs.pop("__reference__")
        return ReferenceOutputs(key, reference, programs, meta.get("duration_ms", 0.0))


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _run_trusted(request: bytes, limits: SandboxLimits, env: dict[str, str]) -> ChildOutcome:
    """`graders.compile_profile outputs-and-profile` on `request` with `env` added: in a child of a trusted worker
    (graders/trusted_workers.py: jax imported once per worker, not once per run), or, if no worker can start it,
    in a process of its own."""
    from graders.jax_env import trusted_env
    from graders.trusted_workers import WORKERS, TrustedWorkerError

    try:
        return WORKERS.run(trusted_env(), "outputs-and-profile", env, request, limits)
    except TrustedWorkerError as exc:
        log.warning("the reference run could not start in a trusted worker (%s); running it on its own", exc)
    command = [sys.executable, "-B", "-s", "-m", "graders.compile_profile", "outputs-and-profile"]
    return run_harness(request, limits, sandboxed=False, trusted_command=command, trusted_env=env)


def _stopped_why(outcome: ChildOutcome, limits: SandboxLimits) -> str:
    """Which limit stopped a trusted run, as an instructor reads it."""
    if outcome.cpu_exceeded or outcome.timed_out:
        return f": stopped after {limits.time_s:g} s"
    if outcome.memory_exceeded:
        return f": stopped at {limits.memory_mb} MB of memory"
    return ""


def _running_when_stopped(outcome: ChildOutcome, loaded: LoadedProblem, cases: list[CaseInput]) -> str:
    """", running known mistake 'x' on test 'y'": the test a run had started and not finished when it ended (the
    run does the reference first, then the known mistakes, then the alternatives, each over every test)."""
    finished = {(m.event.program, m.event.index) for m in outcome.events("test")
                if isinstance(m.event, ev.TestOk | ev.TestError | ev.TestRejected)}
    started = [(m.event.program, m.event.index) for m in outcome.events("start") if isinstance(m.event, ev.Start)]
    if not started or started[-1] in finished:
        return ""
    program, index = started[-1]
    mistakes, alternatives = loaded.problem.known_mistakes, loaded.problem.alternatives
    if program == 0:
        which = "the reference"
    elif program <= len(mistakes):
        which = f"known mistake {mistakes[program - 1].id!r}"
    elif program - 1 - len(mistakes) < len(alternatives):
        which = f"alternative {alternatives[program - 1 - len(mistakes)].id!r}"
    else:
        return ""
    test = f"test {cases[index].name!r}" if 0 <= index < len(cases) else f"test {index}"
    return f", running {which} on {test}"


def compute(loaded: LoadedProblem, cases: list[CaseInput], key: str, *,
            record_profile: bool = False, cache_dir: Path | None = None) -> ReferenceOutputs:
    """Run the reference and every known mistake on every test, in one trusted child process; with
    `record_profile`, the same process records the compile profile (graders/compile_profile.py: the reference's
    entries, the known mistakes' and alternatives' extra ones) and, given the data dir's `cache_dir`, compiles
    through the trusted cache (graders/trusted_cache.py)."""
    from graders.compile_profile import RecordedProfile, recorded_programs, reference_run_env

    problem = loaded.problem
    programs = recorded_programs(loaded)  # the reference, the known mistakes, the alternatives
    if not record_profile:  # the alternatives run for the profile only (their outputs are not kept)
        programs = programs[:1 + len(problem.known_mistakes)]
    request = build_request(loaded, cases, programs, output_budget=256 * 1024 * 1024,
                            probes=reference_probes(loaded))
    # Unsandboxed (no cgroup to measure CPU time): `time_s` is a wall-clock limit here.
    limits = SandboxLimits(time_s=max(TRUSTED_RUN_MIN_S, problem.limits.time_s * len(programs)), memory_mb=8192,
                           result_bytes=1024 * 1024 * 1024, log_bytes=64 * 1024)
    profile: RecordedProfile | None = None
    env = {"PYTHONHASHSEED": "0", **(reference_run_env(cache_dir) if cache_dir is not None else {})}
    if record_profile:
        with tempfile.TemporaryDirectory(prefix="gradax-profile-") as tmp:
            profile_out = Path(tmp) / "profile.json"
            outcome = _run_trusted(request, limits, {**env, "GRADAX_PROFILE_OUT": str(profile_out)})
            try:
                said = json.loads(profile_out.read_text())
                profile = RecordedProfile(said["entries"], said["extra"])
            except (OSError, ValueError, KeyError, TypeError):
                profile = None  # the run failed (said below) or wrote no profile: it is recorded on its own later
    else:
        outcome = _run_trusted(request, limits, env)
    if outcome.start_error or outcome.timed_out or not outcome.events("done"):
        stderr = outcome.stderr.decode("utf-8", "replace")[-4000:]
        raise ReferenceError(f"{loaded.id}: the reference runner did not finish{_stopped_why(outcome, limits)}"
                             f"{_running_when_stopped(outcome, loaded, cases)} (exit {outcome.exit_code}): "
                             f"{outcome.start_error or ''}{outcome.wire_error or ''}{outcome.reader_error or ''}"
                             f"\n{stderr}")
    results = outputs_from_messages(outcome.messages, len(programs))
    mistakes = {m.id: results[i + 1] for i, m in enumerate(problem.known_mistakes)}
    return ReferenceOutputs(key, results[0], mistakes, outcome.run_ms or 0.0, profile)
