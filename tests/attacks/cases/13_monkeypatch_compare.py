# Row 13: monkeypatches the comparison functions, then returns a wrong answer. Expect wrong_answer.
import math

import jax.numpy as jnp
import numpy as np

np.allclose = lambda *a, **k: True
np.isclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
math.isclose = lambda *a, **k: True
jnp.allclose = lambda *a, **k: True


def module_basics_forward(seed, x, features):
    return jnp.zeros((int(features),))
