"""Engine settings, read from environment variables prefixed `GRADAX_`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class GraderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRADAX_", extra="ignore")

    data_dir: Path = Path(".gradax")
    problems_dir: Path = PROJECT_ROOT / "problems"
    # Course and assignment files, checked by `gradax check` beside the problems (docs/courses.md).
    courses_dir: Path = PROJECT_ROOT / "courses"
    # "bwrap" is the only mode for untrusted code; "none" is for trusted local use and warns loudly.
    sandbox: Literal["bwrap", "none"] = "bwrap"
    # Upper bounds that no problem file can exceed (clients never choose limits at all).
    max_time_s: float = 30.0
    max_memory_mb: int = 4096
    max_output_kb: int = 65536
    max_code_bytes: int = 64 * 1024
    # Time allowed for the child to import jax/flax/optax before it counts as a grader failure.
    startup_timeout_s: float = 60.0

    @field_validator("data_dir", "problems_dir", "courses_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Resolved once, against the working directory at start-up: these paths are handed to bwrap
        # (which needs absolute bind sources) and to child processes that run with another cwd.
        return value.expanduser().absolute()

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"


@lru_cache(maxsize=1)
def get_settings() -> GraderSettings:
    return GraderSettings()
