# Row 10: returns a 20000x20000 float32 array (1.6 GB once materialized; here a broadcast view that
# costs nothing to make). Expect output_limit_exceeded, decided before anything is copied.
import numpy as np


def module_basics_forward(seed, x, features):
    return np.broadcast_to(np.float32(0.0), (20000, 20000))
