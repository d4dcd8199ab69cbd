# Row 5: os._exit(0) inside the graded call: tests without outputs fail. Expect runtime_error.
import os


def module_basics_forward(seed, x, features):
    os._exit(0)
