# Row 24: kills its parent and then every process it can signal with kill(-1, SIGKILL).
# Expect runtime_error; only the sandbox dies, the grader keeps answering.
import os
import signal


def module_basics_forward(seed, x, features):
    try:
        os.kill(os.getppid(), signal.SIGKILL)
    except OSError:
        pass
    os.kill(-1, signal.SIGKILL)
