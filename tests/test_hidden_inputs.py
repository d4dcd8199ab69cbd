"""A submission never sees a hidden test's inputs while anything it writes can still reach its report.

The child gets the hidden tests' inputs only once it has reported the public tests (graders/request.py,
graders/supervision.py ChildPipes): what it printed before is shown, what it prints, raises or builds after is
not (graders/engine.py). Each hostile file in tests/attacks/hidden_inputs/ tries one way to put the inputs into
the report; the report must hold none of them, cold and warm alike, and still show the public test's prints.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from warm_grading import grade_warm

from graders.cases import build_cases
from graders.executor import Executor
from graders.problem import ProblemBank
from graders.settings import GraderSettings

ROOT = Path(__file__).resolve().parent.parent
FILES = Path(__file__).resolve().parent / "attacks" / "hidden_inputs"
PID = "nnx-module-basics"

pytestmark = [pytest.mark.slow, pytest.mark.attack]


def hidden_values(bank: ProblemBank) -> dict[str, str]:
    """Each hidden input's first values in every form the files write them (repr, %.6g, and %.6g in a name)."""
    loaded = bank.get(PID)
    assert loaded is not None
    found: dict[str, str] = {}
    for case in build_cases(loaded.problem):
        if case.public:
            continue
        for arr in (a for a in case.args if isinstance(a, np.ndarray)):
            for value in np.asarray(arr, dtype=np.float64).ravel()[:4]:
                if value == round(value, 1):
                    continue  # 1.0, 0.5: could appear by chance
                short = f"{value:.6g}"
                found[f"{case.name} {short}"] = short
                found[f"{case.name} {short} (repr)"] = repr(float(np.float32(value)))
                found[f"{case.name} {short} (name)"] = short.replace(".", "p").replace("-", "m")
    assert len({k.split()[0] for k in found}) >= 3, "too few hidden tests with telling values"
    return found


@pytest.mark.parametrize("name", ["printer", "raiser", "channel", "ender", "clock"])
def test_no_hidden_input_reaches_the_report(name: str, cold_or_warm: tuple[Executor, GraderSettings]) -> None:
    bank = ProblemBank(ROOT / "problems")
    pool, settings = cold_or_warm
    report, _ = grade_warm(pool, bank, PID, (FILES / f"{name}.py").read_bytes(), settings)
    text = json.dumps(report)
    leaked = [what for what, needle in hidden_values(bank).items() if needle in text]
    assert leaked == [], json.dumps(report, indent=1)[:6000]
    tests = {t["name"]: t for t in report["tests"]}
    hidden = [t for t in report["tests"] if not t["public"]]
    assert report["verdict"] != "accepted" and len(hidden) >= 5
    assert all(t["duration_ms"] is None for t in hidden)  # its own time could encode an input (a sleep)
    assert tests["example"]["duration_ms"] is not None
    if name == "printer":
        # The public test's prints are shown, the hidden tests' are not, and the report says so.
        assert "CALL 0.0 [1.0, 2.0, 3.0] 4.0" in report["stdout"], report["stdout"]
        assert "DUP [1.0, 2.0, 3.0]" in report["stdout"]
        assert report["stdout"].rstrip().endswith("Run shows what it prints on the public tests]")
        assert "WARN [1.0, 2.0, 3.0]" in report["stderr"]
        assert all(t["status"] == "failed" for t in hidden)
    if name == "raiser":
        # The public test shows the error in full; a hidden test names no class of the submission's own.
        assert "inputs [1.0, 2.0, 3.0]" in tests["example"]["message"]
        assert {t["message"] for t in hidden} == {"an exception of your own class raised (hidden test)"}
        assert all(t.get("traceback") is None and t.get("line") is None for t in hidden)
    if name == "ender":
        # How the process ended is the submission's choice (here seed 7 of the first hidden test made status 16):
        # the hidden test says it ended, not how.
        first = hidden[0]
        assert first["status"] == "error" and "exit status or signal is not shown" in first["message"], first
        assert "status 16" not in text and "exited with" not in text, text[:3000]
    if name == "clock":
        # The child's own figures of a hidden test (its duration, compile and probe times) are numbers its process
        # wrote: no sum of them is shown, only the public tests' (the public one compiled, so there is one).
        timings = report["timings"]
        assert 0 < timings["compile_ms"] <= timings["tests_ms"] < 60_000, timings
        assert timings.get("probes_ms", 0) < 60_000, timings
        assert "7004" not in text
    if name == "channel":
        assert report["verdict"] == "runtime_error"
        assert "written during the hidden tests" in report["message"], report["message"]


def test_what_a_hidden_test_allocates_is_not_in_the_report(cold_or_warm: tuple[Executor, GraderSettings]) -> None:
    """How much memory a hidden test takes is the submission's to choose, from an input: a report shows the run's
    memory peak up to the moment the hidden tests' inputs were sent (8 MB or 200 MB in the first hidden test: one
    peak, within the noise of a run)."""
    bank = ProblemBank(ROOT / "problems")
    pool, settings = cold_or_warm
    peaks = []
    for mb in (8, 200):
        code = (FILES / "hog.py").read_text().replace("__MB__", str(mb)).encode()
        report, _ = grade_warm(pool, bank, PID, code, settings)
        assert report["verdict"] == "wrong_answer" and report["passed"] == 0, json.dumps(report, indent=1)[:3000]
        assert report["usage"]["memory_peak_mb"] == report["timings"]["memory_peak_mb"], report
        peaks.append(report["usage"]["memory_peak_mb"])
    assert peaks[0] > 0 and abs(peaks[1] - peaks[0]) < 48, peaks
