"""Hostile model descriptions: the child's state description and check results are data it sends, so a
submission can replace them. The parent validates them (graders/probe_schema.py) and charges a forgery to
the submission (`runtime_error`, never `internal_error`), in the real sandbox.

What validation cannot do is tell a well-formed lie from the truth: the checks run in the submission's
process, so a submission that forges a correct-looking description passes the model stages. They teach; the
outputs are still compared with the reference's, so a forgery never makes a wrong answer accepted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.attack]

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = (ROOT / "reference_solutions" / "nnx_module_basics.py").read_text()

FORGE = '''
import sys
_probe = sys.modules["graders.child.model_probe"]
def _forged(self, *args, **kwargs):
    return {FORGED}
_probe.Session.results = _forged
'''

CASES = {
    # An array index that was never sent.
    "dangling-array": '{"state": {"roots": ["M"], "variables": [{"path": "kernel", "type": "Param", '
                      '"base": "Param", "shape": [3, 4], "dtype": "float32", "value": 99999}]}}',
    # More variables than the schema allows (512), each well formed.
    "too-many-variables": '{"state": {"roots": ["M"], "variables": [{"path": "v%d" % i, "type": "Param", '
                          '"base": "Param", "shape": [1], "dtype": "float32"} for i in range(600)]}}',
    # A field the harness never writes, and a type name that is not an identifier.
    "unknown-field": '{"state": {"roots": ["M"], "variables": [], "verdict": "accepted"}}',
    "markup-in-type": '{"state": {"roots": ["<img src=x>"], "variables": []}}',
    # A check result whose tree nests far deeper than any output.
    "deep-tree": '{"eval_determinism": {"first": __import__("functools").reduce(lambda t, _: {"t": "tuple", '
                 '"c": [t]}, range(200), {"t": "leaf", "i": 0}), "second": {"t": "leaf", "i": 0}}}',
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_forged_model_description_is_the_submission_s_runtime_error(case: str, tmp_path: Path, gradax: Any) -> None:
    path = tmp_path / "submission.py"
    path.write_text(REFERENCE + FORGE.replace("{FORGED}", CASES[case]))
    result = gradax("grade", "nnx-module-basics", str(path), "--json", env={"GRADAX_SANDBOX": "bwrap"})
    assert result.stdout, result.stderr
    report = result.json()
    assert report["verdict"] == "runtime_error", report
    assert result.returncode == 1
    first = report["tests"][0]
    assert first["status"] == "error" and "result channel" in first["message"], first
    assert "<img" not in result.stdout


def test_a_well_formed_lie_fools_only_the_teaching(tmp_path: Path, gradax: Any) -> None:
    """A plain-array kernel with a forged Param description passes the state stage; a forged description
    on wrong outputs is still a wrong answer."""
    lie = ('{"state": {"roots": ["Projection"], "variables": [{"path": "kernel", "type": "Param", "base": "Param", '
           '"shape": [int(d) for d in _shape()], "dtype": "float32"}]}}')
    shape = "\n_last = {}\ndef _shape():\n    return _last['shape']\n"
    wrong = REFERENCE.replace("return model(x)", "_last['shape'] = model.kernel.shape\n    return model(x) * 2")
    path = tmp_path / "submission.py"
    path.write_text(wrong + shape + FORGE.replace("{FORGED}", lie))
    report = gradax("grade", "nnx-module-basics", str(path), "--json", env={"GRADAX_SANDBOX": "bwrap"}).json()
    assert report["verdict"] == "wrong_answer"
    assert report["tests"][0]["stage"] == "values", report["tests"][0]
