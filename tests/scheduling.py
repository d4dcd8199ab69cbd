"""How `pytest -n 3 --dist loadgroup` shares the suite between its workers (loaded by tests/conftest.py).

Units: a test is scheduled alone unless it is tied to others. Tests with an `xdist_group` mark go as one unit to
one worker (so a heavy fixture the group shares is built once). Tests that use a module- or class-scoped fixture
go as one unit per module (interleaved with other modules, a worker would tear such a fixture down and build it
again; split between workers, both would build it).

Order: longest unit first (longest processing time first), so the run does not end with one worker finishing a
long group alone while the other idles. A unit's cost is the sum of its tests' costs: seconds per test of its
module from tests/durations.json (measured: `scripts/test-durations.py`), else a guess from its marks.

One exception: a unit marked `every_core` (the whole bank's `gradax check`, a trusted process per core: it takes
every core it is given) goes first, and another worker runs the units marked `waits` beside it: tests that
mostly wait (a lock's timeout, long polls, a sleeping submission) leave a core idle wherever else they run, and
beside the check, the check takes it. A run's CPU sampled per second (2026-12-03) had the cores busy 86 % of the
time, the idle mostly beside those tests. Two workers still left the cores idle 12 % of a run (2026-12-04), in
short gaps throughout, so `make test` runs three on the 2-core machine: 98 % busy, 7 % less wall time.

Why the nodeid rewrite: pytest-xdist 3.8 marks a test's group by setting `item._nodeid`, which pytest 9 no
longer reads (a node's id lives in `item._id`); without this, every `xdist_group` was silently ignored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _pytest.nodeid import NodeId

DURATIONS = Path(__file__).with_name("durations.json")
# Guesses for a module the durations file does not know yet (seconds per test).
GUESS_SLOW_S, GUESS_FAST_S = 8.0, 0.3


def load_durations(path: Path = DURATIONS) -> dict[str, float]:
    """Seconds per test by module, and by test id for the few tests far longer than their module's average
    (the whole bank's `gradax check` is one 220 s test in a module of 30 s tests): a test id wins."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for section in ("seconds_per_test", "seconds_by_test")
            for k, v in data.get(section, {}).items()}


def module_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def explicit_group(item: pytest.Item) -> str | None:
    names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                    for m in item.iter_markers("xdist_group")})
    return "_".join(names) if names else None


def uses_module_fixture(item: pytest.Item) -> bool:
    info: Any = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(defs and defs[-1].scope in ("module", "class", "package")
               for defs in info.name2fixturedefs.values())


def unit_of(item: pytest.Item) -> str:
    """The scheduling unit: the explicit group, else the module if a module fixture ties its tests, else itself."""
    group = explicit_group(item)
    if group is not None:
        return group
    if uses_module_fixture(item):
        return "module:" + module_of(item)
    return item.nodeid


def cost_of(item: pytest.Item, durations: dict[str, float]) -> float:
    known = durations.get(str(item.nodeid).split("@")[0], durations.get(module_of(item)))
    if known is not None:
        return known
    return GUESS_SLOW_S if item.get_closest_marker("slow") else GUESS_FAST_S


def beside_every_core(order: list[str], first: str | None, waiting: set[str], workers: int = 2) -> list[str]:
    """`order` with `first` (if any) first and the `waiting` units where xdist's LoadScopeScheduling hands them
    to the other workers while that one runs: it gives one unit to each worker in turn (the first unit to the first
    worker), then, in the same turn, a further unit to each worker with two tests or fewer pending (the first
    unit's worker keeps that one queued behind it), then the next one to whichever worker asks, which is never the
    first unit's worker until the first unit ends. So: the first unit; a waiting unit and the longest others, one
    per other worker; one more of the others, queued behind the first; the other waiting units; the rest. A
    waiting unit is never the one queued behind the first: it would wait for the check instead of beside it."""
    if first is None:
        return order
    rest = [u for u in order if u != first]
    waits = [u for u in rest if u in waiting]
    others = [u for u in rest if u not in waiting]
    starters = max(0, workers - 2)  # the other workers' first units besides the first waiting one
    return [first, *waits[:1], *others[:starters + 1], *waits[1:], *others[starters + 1:]]


def order_and_group(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On each xdist worker (all order alike): units longest first, each unit's tests together in file order;
    under --dist loadgroup, every test's nodeid ends in `@unit` when its unit is shared, which is how xdist's
    LoadGroupScheduling groups."""
    durations = load_durations()
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(unit_of(item), []).append(item)
    costs = {unit: sum(cost_of(i, durations) for i in members) for unit, members in units.items()}

    def marked(unit: str, mark: str) -> bool:
        return all(item.get_closest_marker(mark) for item in units[unit])

    order = sorted(units, key=lambda u: -costs[u])  # stable: equal costs keep file order
    workers = getattr(config.option, "numprocesses", None)
    order = beside_every_core(order, next((u for u in order if marked(u, "every_core")), None),
                              {u for u in order if marked(u, "waits")},
                              workers if isinstance(workers, int) and workers > 1 else 2)
    items[:] = [item for unit in order for item in units[unit]]
    if not getattr(config.option, "loadgroup", False):
        return
    for unit, members in units.items():
        if unit == members[0].nodeid and len(members) == 1:
            continue
        suffix = unit.removeprefix("module:").replace("@", "_")
        for item in members:
            # What xdist's own hook means to do (it sets item._nodeid, unread since pytest 9).
            item._id = NodeId.parse(f"{str(item.nodeid).split('@')[0]}@{suffix}")  # type: ignore[attr-defined]
