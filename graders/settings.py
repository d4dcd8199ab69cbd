"""Engine settings, read from environment variables prefixed `GRADAX_`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class GraderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRADAX_", extra="ignore")

    data_dir: Path = Path(".gradax")
    problems_dir: Path = PROJECT_ROOT / "problems"
    # "bwrap" is the only mode for untrusted code; "none" is for trusted local use and warns loudly.
    sandbox: Literal["bwrap", "none"] = "bwrap"
    # Upper bounds that no problem file can exceed (clients never choose limits at all).
    max_time_s: float = 30.0
    max_memory_mb: int = 4096
    max_output_kb: int = 65536
    max_code_bytes: int = 64 * 1024
    # Time allowed for the child to import jax/flax/optax before it counts as a grader failure.
    startup_timeout_s: float = 60.0

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"


@lru_cache(maxsize=1)
def get_settings() -> GraderSettings:
    return GraderSettings()
