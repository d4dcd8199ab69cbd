# Row 2: sleeps for an hour and ignores SIGTERM/SIGINT. Expect time_limit_exceeded by wall time.
import signal
import time

for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
    signal.signal(sig, signal.SIG_IGN)


def module_basics_forward(seed, x, features):
    time.sleep(3600)
