# Row 7: forks hundreds of sleeping children (each carries the test marker in its command line).
# Expect runtime_error from the message below, with fewer children than the process limit allows.
import os


def module_basics_forward(seed, x, features):
    started = 0
    for _ in range(500):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            try:
                os.execv("/usr/bin/sleep", ["sleep", "3600", "__MARKER__"])
            finally:
                os._exit(0)
        started += 1
    raise RuntimeError(f"forked {started} children")
