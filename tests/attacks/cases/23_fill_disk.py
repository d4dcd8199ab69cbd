# Row 23: fills the disk with one big file, then makes as many files as it can (once; every later test
# raises the same report). Expect runtime_error whose message reports the caps it hit.
import os

REPORT = []


def _fill():
    block = b"\0" * (1024 * 1024)
    written = 0
    try:
        with open("/tmp/__MARKER__-big", "wb") as fh:
            while written < 10 * 1024**3:
                fh.write(block)
                written += len(block)
    except OSError as exc:
        REPORT.append(f"big file stopped at {written // 2**20} MiB: {exc}")
    os.makedirs("/tmp/many", exist_ok=True)
    count = 0
    try:
        while count < 1_000_000:
            with open(f"/tmp/many/{count}", "wb"):
                pass
            count += 1
    except OSError as exc:
        REPORT.append(f"file {count} failed: {exc}")
    if not REPORT:
        REPORT.append(f"made {count} files")


def module_basics_forward(seed, x, features):
    if not REPORT:
        _fill()
    raise OSError("; ".join(REPORT))
