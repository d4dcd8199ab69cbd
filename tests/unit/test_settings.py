"""The settings tree: paths handed to the sandbox are absolute whatever the working directory, and every
documented GRADAX_ variable is a setting read from its variable (docs/settings.md), and the other way round."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest

from app.core.config import Settings
from graders.settings import GraderSettings


def test_relative_paths_are_resolved_once_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = GraderSettings(data_dir=Path("data"), problems_dir=Path("bank"))
    assert settings.data_dir == tmp_path / "data" and settings.problems_dir == tmp_path / "bank"
    assert settings.cache_dir == tmp_path / "data" / "cache"
    monkeypatch.chdir("/")
    assert settings.cache_dir == tmp_path / "data" / "cache"


# -- one settings tree: what the docs list is what the code reads ------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r"GRADAX_[A-Z0-9_]*[A-Z0-9](?![A-Za-z0-9])")
NOT_SETTINGS = "## Not settings"


def _env_names(model: type[GraderSettings]) -> set[str]:
    return {f"GRADAX_{name.upper()}" for name in model.model_fields}


def test_every_documented_variable_is_a_setting_and_every_setting_is_documented() -> None:
    reference = (ROOT / "docs" / "settings.md").read_text()
    tables, _, others = reference.partition(NOT_SETTINGS)
    fields = _env_names(Settings)
    assert set(VARIABLE.findall(tables)) == fields  # the reference tables list the tree, no more, no less
    not_settings = set(VARIABLE.findall(others))
    assert not_settings and not not_settings & fields
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    unknown = {f"{page.name}: {name}" for page in pages for name in VARIABLE.findall(page.read_text())
               if name not in fields | not_settings}
    assert not unknown, f"documented but not a setting (add it to the tree, or to docs/settings.md): {unknown}"
    assert _env_names(GraderSettings) < fields  # the engine's settings are part of the server's


def _other_value(name: str, annotation: Any, default: Any, tmp_path: Path) -> tuple[str, Any]:
    """A valid value unlike the default, as the environment spells it and as the setting holds it."""
    if get_origin(annotation) is Literal:
        value = next(v for v in get_args(annotation) if v != default)
        return value, value
    if annotation is bool:
        return str(not default).lower(), not default
    if annotation in (int, float):
        return str(default + 2), default + 2
    if annotation is Path:
        return str(tmp_path / name), tmp_path / name
    assert annotation is str, f"{name}: add a value for {annotation}"
    return f"{name}-from-env", f"{name}-from-env"


def test_every_setting_is_read_from_its_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = {}
    for name, field in Settings.model_fields.items():
        text, expected[name] = _other_value(name, field.annotation, field.default, tmp_path)
        monkeypatch.setenv(f"GRADAX_{name.upper()}", text)
    app_settings, engine_settings = Settings(), GraderSettings()
    assert {name: getattr(app_settings, name) for name in expected} == expected
    assert {name: getattr(engine_settings, name) for name in GraderSettings.model_fields} == \
        {name: expected[name] for name in GraderSettings.model_fields}


def test_an_unknown_pool_is_refused_with_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADAX_POOL", "lukewarm")
    with pytest.raises(ValueError, match="GRADAX_POOL='lukewarm' is not a known grading pool"):
        GraderSettings()
