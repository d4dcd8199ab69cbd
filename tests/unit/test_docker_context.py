"""The image's build context is an allow-list (.dockerignore): whatever the package or its settings need
must be on it, or the image builds and then fails at start-up (a new top-level package did exactly that).
Cheap, so it runs with the suite; the container test builds and runs the image itself."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _allowed() -> set[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines, ".dockerignore must start from excluding everything"
    return {line[1:].strip("/") for line in lines if line.startswith("!")}


def test_every_package_directory_and_data_directory_is_in_the_build_context() -> None:
    allowed = _allowed()
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    needed = {"pyproject.toml", "README.md", "requirements.lock", "problems", "reference_solutions", "courses"}
    for where in find.get("where", ["."]):
        if where != ".":
            needed.add(where.split("/")[0])
            continue
        for pattern in find["include"]:
            top = pattern.rstrip("*").split(".")[0]
            if (ROOT / top).is_dir():
                needed.add(top)
    missing = sorted(needed - allowed)
    assert not missing, f"add to .dockerignore's allow-list: {missing}"
    for name in allowed:
        assert (ROOT / name).exists(), f".dockerignore allows {name!r}, which does not exist"
