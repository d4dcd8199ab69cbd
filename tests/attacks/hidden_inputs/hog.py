# Allocates memory in the first hidden test by an amount made from that test's inputs (here __MB__ MB), so the run's
# memory peak would say it.
import numpy as np

CALLS = []
HELD = []


def module_basics_forward(seed, x, features):
    CALLS.append(seed)
    if len(CALLS) == 2:  # the one public test is the first call
        block = np.ones(__MB__ * 2**20, np.uint8)  # touched: charged to the run's memory
        HELD.append(block)
    return np.zeros((int(features),), np.float32)
