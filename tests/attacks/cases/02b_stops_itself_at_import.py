# Row 2, at import: ignores SIGTERM/SIGINT, then stops itself (SIGSTOP) while the file is being loaded, so it never
# reaches the graded call and uses no CPU. Expect time_limit_exceeded by wall time, the message naming the limit, not
# "Your file stopped the grading process: ... SIGKILL" (that SIGKILL is the grader's, at the limit).
import os
import signal

for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
    signal.signal(sig, signal.SIG_IGN)
os.kill(os.getpid(), signal.SIGSTOP)


def module_basics_forward(seed, x, features):
    return x
