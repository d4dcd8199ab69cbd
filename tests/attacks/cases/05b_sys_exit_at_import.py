# Row 5: sys.exit(0) while the file is being loaded. Expect runtime_error.
import sys

sys.exit(0)


def module_basics_forward(seed, x, features):
    return x
