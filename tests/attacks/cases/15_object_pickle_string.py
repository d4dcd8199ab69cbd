# Row 15: returns an object-dtype array, a pickle and a string on different tests.
# The pickle would create a marker file if anything unpickled it. Expect runtime_error.
import os
import pickle

import numpy as np


class Boom:
    def __reduce__(self):
        return (os.system, ("touch /tmp/__MARKER__-unpickled __ROOT__/__MARKER__-unpickled",))


def module_basics_forward(seed, x, features):
    kind = int(seed) % 3
    if kind == 0:
        return np.array([Boom(), 1.0], dtype=object)
    if kind == 1:
        return pickle.dumps(Boom())
    return "accepted"
