# Row 14: returns an ndarray subclass whose comparisons always say "equal". Expect wrong_answer.
import numpy as np


class AlwaysEqual(np.ndarray):
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    def __sub__(self, other):
        return np.zeros_like(np.asarray(self))

    def __array_finalize__(self, obj):
        pass


def module_basics_forward(seed, x, features):
    return np.zeros(int(features), dtype=np.float32).view(AlwaysEqual)
