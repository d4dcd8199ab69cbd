# Row 9: touches 8 GiB of memory. Expect memory_limit_exceeded.
import numpy as np


def module_basics_forward(seed, x, features):
    block = np.ones(8 * 1024**3 // 8, dtype=np.float64)
    return block[: int(features)]
