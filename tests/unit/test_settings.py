"""Engine settings: paths handed to the sandbox must be absolute whatever the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.settings import GraderSettings


def test_relative_paths_are_resolved_once_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = GraderSettings(data_dir=Path("data"), problems_dir=Path("bank"))
    assert settings.data_dir == tmp_path / "data" and settings.problems_dir == tmp_path / "bank"
    assert settings.cache_dir == tmp_path / "data" / "cache"
    monkeypatch.chdir("/")
    assert settings.cache_dir == tmp_path / "data" / "cache"
