"""An exclusive lock between processes that share a data dir (`gradax serve`, `gradax prepare`, workers).

flock(2) on a lock file: released by the kernel when the holder dies, so a crashed process never leaves
a problem locked. Locks belong to an open file, not a process: a thread that already holds one file's lock
must not take the same file's lock again (it would wait for itself); callers use one file per purpose.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
