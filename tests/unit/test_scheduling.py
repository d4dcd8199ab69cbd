"""How the suite is ordered for its workers (tests/scheduling.py): longest units first, by measured cost."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
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


class _Node:
    """What xdist's scheduler asks of a worker: the indexes of the tests it is sent, and a shutdown."""

    def __init__(self, name: str) -> None:
        from types import SimpleNamespace

        self.gateway = SimpleNamespace(id=name)
        self.sent: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indexes: list[int]) -> None:
        self.sent += indexes

    def shutdown(self) -> None:
        self.shutting_down = True


@pytest.mark.parametrize("workers", [2, 3])
def test_the_waiting_units_run_beside_the_every_core_unit_on_the_other_workers(workers: int) -> None:
    """Driven through pytest-xdist's own LoadGroupScheduling, as `-n 2` or `-n 3 --dist loadgroup` runs the suite:
    while the every-core unit (one test) runs on one worker, every waiting unit goes to the others, and the first
    worker has a single ordinary unit queued behind it."""
    from types import SimpleNamespace

    from scheduling import beside_every_core
    from xdist.scheduler.loadgroup import LoadGroupScheduling

    units = {"web@g": ["t/a.py::x@g", "t/a.py::y@g", "t/b.py::z@g"], "t/check.py::bank": ["t/check.py::bank"],
             "t/c.py::one": ["t/c.py::one"], "t/w.py::lock": ["t/w.py::lock"], "t/d.py::two": ["t/d.py::two"],
             "t/w.py::polls": ["t/w.py::polls"], "t/w.py::sleep": ["t/w.py::sleep"], "t/e.py::three": ["t/e.py::three"]}
    longest_first = list(units)
    waiting = {"t/w.py::lock", "t/w.py::polls", "t/w.py::sleep"}
    order = beside_every_core(longest_first, "t/check.py::bank", waiting, workers)
    assert order[0] == "t/check.py::bank" and sorted(order) == sorted(units)
    collection = [test for unit in order for test in units[unit]]

    config = SimpleNamespace(getvalue=lambda name: [f"{workers}*popen"], option=SimpleNamespace(loadscopereorder=False))
    sched = LoadGroupScheduling(config)  # type: ignore[arg-type]
    nodes = [_Node(f"gw{i}") for i in range(workers)]
    first, others = nodes[0], nodes[1:]
    for node in nodes:
        sched.add_node(node)  # type: ignore[arg-type]
        sched.add_node_collection(node, collection)  # type: ignore[arg-type]
    sched.schedule()
    # The every-core unit runs on and on; the other workers complete whatever they are sent, one test at a time.
    done = {node.gateway.id: 0 for node in others}
    while sched.workqueue and any(done[node.gateway.id] < len(node.sent) for node in others):
        for node in others:
            if done[node.gateway.id] < len(node.sent):
                sched.mark_test_complete(node, node.sent[done[node.gateway.id]])  # type: ignore[arg-type]
                done[node.gateway.id] += 1
    ran_beside = [collection[i] for node in others for i in node.sent]
    queued_behind = [collection[i] for i in first.sent]
    assert queued_behind[0] == "t/check.py::bank"
    assert waiting <= set(ran_beside), (ran_beside, queued_behind)  # every waiting unit beside the check
    behind = [unit for unit in units if units[unit][0] == queued_behind[1]]
    assert len(behind) == 1 and behind[0] not in waiting and len(queued_behind) == 1 + len(units[behind[0]])
