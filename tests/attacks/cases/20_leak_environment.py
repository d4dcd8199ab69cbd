# Row 20: reads os.environ, /proc/*/environ and /proc/*/cmdline and raises them as the error message.
# Expect runtime_error, and no secret of the grader's environment anywhere in the report.
import os


def module_basics_forward(seed, x, features):
    parts = [repr(dict(os.environ))]
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for name in ("environ", "cmdline"):
            try:
                with open(f"/proc/{pid}/{name}", "rb") as fh:
                    parts.append(f"{pid}/{name}: {fh.read()!r}")
            except OSError as exc:
                parts.append(f"{pid}/{name}: {exc}")
    raise RuntimeError(" | ".join(parts))
