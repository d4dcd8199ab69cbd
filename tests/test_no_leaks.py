"""No reference solution and no hidden test ever leaves the server: not in any API answer a student can get, not
in the problem page, not in what `gradax pull` writes.

What counts as a leak: a line of the reference solution that the problem's public text does not already show (the
statement's worked example may share a line with it), the code of a known mistake, and the inputs or expected
outputs of hidden and generated tests (checked by their numbers, as JSON and as reports print them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from live_server import PASSWORD, SharedServer

from graders.cases import build_cases
from graders.engine import Grader
from graders.problem import ProblemBank
from graders.settings import GraderSettings

ROOT = Path(__file__).resolve().parent.parent
PID = "nnx-module-basics"
WRONG = "def module_basics_forward(seed, x, features):\n    return x[:1] * 3.0\n"

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("web-grading")]


def secrets(data_dir: Path) -> dict[str, str]:
    """Text that must never reach a student, keyed by what it is."""
    bank = ProblemBank(ROOT / "problems")
    loaded = bank.get(PID)
    assert loaded is not None
    problem = loaded.problem
    # what any visitor may read anyway, across the bank (statements show idioms the reference also uses)
    public_text = "\n".join(part for other in bank for part in (other.problem.statement, other.problem.starter_code,
                                                                 *other.problem.hints))
    found: dict[str, str] = {}
    for line in loaded.reference_source.decode().splitlines():
        if len(line.strip()) > 12 and line.strip() not in public_text:
            found[f"reference line {line.strip()!r}"] = line.strip()
    for mistake in problem.known_mistakes:
        for line in mistake.code.splitlines():
            if line.strip().startswith("return") and line.strip() not in public_text:
                found[f"known mistake {mistake.id} code"] = line.strip()
    # hidden inputs and expected outputs, by numbers that cannot appear by chance (not 1.0, 2.0, ...)
    grader = Grader(bank, GraderSettings(data_dir=data_dir, sandbox="bwrap"))
    cases, reference = grader.reference_for(loaded)
    for index, case in enumerate(cases):
        if case.public:
            continue
        arrays = [a for a in case.args if isinstance(a, np.ndarray)]
        arrays += list(reference.reference.outputs[index].leaves)
        for arr in arrays:
            for value in np.asarray(arr, dtype=np.float64).ravel()[:3]:
                if value != round(value, 2):
                    found[f"hidden test {case.name} value {value!r} (json)"] = repr(float(np.float32(value)))
                    found[f"hidden test {case.name} value {value!r} (printed)"] = f"{value:.6g}"[:8]
    assert len([k for k in found if k.startswith("hidden")]) >= 10, "too few hidden values to look for"
    assert any(k.startswith("reference") for k in found)
    return found


def leaks(text: str, secret: dict[str, str]) -> list[str]:
    return [what for what, needle in secret.items() if needle in text]


class Api:
    def __init__(self, base: str, username: str):
        self.base = base
        form = f"username={username}&password={PASSWORD.replace(' ', '+')}".encode()
        with urllib.request.urlopen(urllib.request.Request(base + "/api/v1/auth/token", data=form)) as r:
            self.token = json.load(r)["access_token"]
        self.answers: list[tuple[str, str]] = []

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=600) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode()
        self.answers.append((f"{method} {path}", text))
        return status, (json.loads(text) if text and text[0] in "[{" else text)


def test_no_reference_and_no_hidden_test_in_any_answer_or_pulled_file(shared_server: SharedServer,
                                                                    tmp_path: Path, data_dir: Path) -> None:
    shared_server.create_user("leak-student")
    api = Api(shared_server.base, "leak-student")
    # everything a student can ask for, on this problem and across the bank
    _, listing = api.call("GET", "/api/v1/problems?limit=200")
    for problem in listing["data"]:
        api.call("GET", f"/api/v1/problems/{problem['id']}")
    api.call("GET", f"/api/v1/problems/{PID}/examples")
    api.call("GET", f"/problems/{PID}")  # the page (as an anonymous visitor would get it too)
    for _ in range(4):
        api.call("POST", f"/api/v1/problems/{PID}/hints")
    status, _ = api.call("GET", f"/api/v1/problems/{PID}/solution")
    assert status == 403
    api.call("PUT", f"/api/v1/problems/{PID}/draft", {"code": WRONG})
    for mode in ("run", "submit"):
        status, created = api.call("POST", "/api/v1/submissions", {"problem_id": PID, "code": WRONG, "mode": mode})
        assert status == 202, created
        status, done = api.call("GET", f"/api/v1/submissions/{created['id']}?wait=30")
        while done["status"] != "done":
            status, done = api.call("GET", f"/api/v1/submissions/{created['id']}?wait=30")
        assert done["verdict"] == "wrong_answer" and done["report"]["tests"]
    api.call("GET", f"/api/v1/submissions?problem_id={PID}")
    api.call("GET", "/api/v1/auth/me")

    secret = secrets(data_dir)
    found = {where: leaks(text, secret) for where, text in api.answers}
    assert {where: what for where, what in found.items() if what} == {}

    # what `gradax pull` writes
    env = {**os.environ, "GRADAX_CONFIG_DIR": str(tmp_path / "config")}
    folder = tmp_path / "pulled"
    folder.mkdir()
    gradax = str(Path(sys.executable).parent / "gradax")
    subprocess.run([gradax, "login", shared_server.base, "--username", "leak-student", "--password-stdin"],
                   input=PASSWORD, text=True, env=env, cwd=folder, check=True, capture_output=True)
    subprocess.run([gradax, "pull", PID], env=env, cwd=folder, check=True, capture_output=True)
    pulled = {p.name: leaks(p.read_text(), secret) for p in folder.iterdir()}
    assert len(pulled) == 3 and {name: what for name, what in pulled.items() if what} == {}
    # the pulled tests are the public ones only
    saved = json.loads((folder / f"{PID}.tests.json").read_text())
    loaded = ProblemBank(ROOT / "problems").get(PID)
    assert loaded is not None
    public = [c.name for c in build_cases(loaded.problem, public_only=True)]
    assert [t["name"] for t in saved["problem"]["tests"]["public"]] == public
    assert set(saved["problem"]["tests"]) == {"public"}
