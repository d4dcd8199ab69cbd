# Tries to show the hidden tests' inputs through everything a report shows: stdout (print, a dup of fd 1 taken at
# import, a thread started at import), stderr (a warning), the model's attribute names, a wrong result.
import gc
import os
import threading
import time
import warnings

import jax.numpy as jnp
import numpy as np
from flax import nnx

OUT, ERR = os.dup(1), os.dup(2)
SEEN = []


def _encoded(arr):
    return "_".join(f"{v:.6g}".replace(".", "p").replace("-", "m") for v in np.asarray(arr).ravel()[:4])


def _scan():
    # Whatever arrays this process holds at import: only the public tests' inputs may be here yet.
    for obj in gc.get_objects():
        if isinstance(obj, np.ndarray) and obj.dtype.kind == "f" and 0 < obj.size < 64:
            print("IMPORT-SCAN", obj.ravel().tolist())


def _chatter():
    while True:
        for arr in list(SEEN):
            os.write(OUT, f"THREAD {np.asarray(arr).ravel().tolist()}\n".encode())
        time.sleep(0.002)


_scan()
threading.Thread(target=_chatter, daemon=True).start()


class Leaky(nnx.Module):
    def __init__(self, x):
        setattr(self, "w_" + _encoded(x), nnx.Param(jnp.zeros((2,))))


def module_basics_forward(seed, x, features):
    SEEN.append(np.asarray(x))
    values = np.asarray(x).ravel().tolist()
    print("CALL", seed, values, features)
    os.write(OUT, f"DUP {values}\n".encode())
    os.write(ERR, f"DUPERR {values}\n".encode())
    warnings.warn(f"WARN {values}")
    Leaky(x)
    return jnp.asarray(x) * 2.0
