"""How the suite is ordered for its two workers (tests/scheduling.py): longest units first, by measured cost."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduling import cost_of, load_durations


@dataclass
class _Item:
    nodeid: str

    def get_closest_marker(self, name: str) -> Any:
        return None


def test_a_test_far_longer_than_its_module_is_costed_by_its_own_figure(tmp_path: Path) -> None:
    """The whole bank's check (220 s) in a module of short tests was costed at the module's 30 s average and could
    start last, leaving one worker alone with it at the end of the run."""
    path = tmp_path / "durations.json"
    path.write_text(json.dumps({"seconds_per_test": {"tests/test_a.py": 30.0},
                                "seconds_by_test": {"tests/test_a.py::test_whole": 220.0}}))
    durations = load_durations(path)
    assert cost_of(_Item("tests/test_a.py::test_whole"), durations) == 220.0  # type: ignore[arg-type]
    assert cost_of(_Item("tests/test_a.py::test_whole@some-group"), durations) == 220.0  # type: ignore[arg-type]
    assert cost_of(_Item("tests/test_a.py::test_other"), durations) == 30.0  # type: ignore[arg-type]
    assert cost_of(_Item("tests/test_b.py::test_new"), durations) > 0  # type: ignore[arg-type]
