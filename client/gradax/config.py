"""Where `gradax login` keeps the server address and the token: the user's config directory, readable by the
user only (0600 in a 0700 directory)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

CREDENTIALS = "credentials.json"


def config_dir() -> Path:
    """`GRADAX_CONFIG_DIR`, else the platform's per-user config directory."""
    explicit = os.environ.get("GRADAX_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / "gradax"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "gradax"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "gradax"


@dataclass
class Credentials:
    server: str
    username: str
    token: str


def save(credentials: Credentials) -> Path:
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    path = directory / CREDENTIALS
    # Created 0600 before the token is written: never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(credentials), fh)
    os.chmod(path, 0o600)
    return path


def load() -> Credentials | None:
    path = config_dir() / CREDENTIALS
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Credentials(server=data["server"], username=data["username"], token=data["token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
