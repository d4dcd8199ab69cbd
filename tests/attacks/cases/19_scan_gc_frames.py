# Row 19: scans gc.get_objects() and every frame for an array that could be the expected output.
# Expect wrong_answer: expected outputs never exist in this process.
import gc
import sys

import jax.numpy as jnp
import numpy as np


def module_basics_forward(seed, x, features):
    n = int(features)
    candidates = []
    for obj in gc.get_objects():
        try:
            if isinstance(obj, np.ndarray) and obj.shape == (n,) and obj.dtype == np.float32:
                candidates.append(obj)
        except Exception:
            pass
    frame = sys._getframe()
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if isinstance(value, np.ndarray) and value.shape == (n,):
                candidates.append(value)
        frame = frame.f_back
    # Anything found here is an input or junk; without a candidate, return zeros.
    return candidates[0] if candidates else jnp.zeros((n,))
