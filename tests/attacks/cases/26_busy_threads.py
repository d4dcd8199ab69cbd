# Row 26: starts hundreds of busy threads (the process limit stops it first) and spins.
# Expect time_limit_exceeded.
import threading


def spin():
    while True:
        pass


def module_basics_forward(seed, x, features):
    for _ in range(500):
        try:
            threading.Thread(target=spin, daemon=True).start()
        except RuntimeError:
            break
    spin()
