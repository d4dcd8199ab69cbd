"""The container image installs requirements.lock: it must pin what pyproject pins and what the tests ran on."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line)
            assert match, f"requirements.lock: not an exact pin: {line!r}"
            pins[canonicalize_name(match.group(1).split("[")[0])] = match.group(2)
    return pins


def test_the_lock_pins_every_runtime_dependency_as_pyproject_does() -> None:
    lock = _lock()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{name} is a dependency but missing from requirements.lock"
        assert requirement.specifier.contains(lock[name], prereleases=True), (
            f"requirements.lock has {name}=={lock[name]}, pyproject wants {requirement.specifier}")


def test_the_lock_is_what_the_tests_run_on() -> None:
    for name, version in _lock().items():
        assert metadata.version(name) == version, (
            f"requirements.lock pins {name}=={version} but {metadata.version(name)} is installed: regenerate it "
            "(see the Dockerfile)")
