# Row 31: writes a perfectly valid result for the running test (the right shape, made-up values), then
# returns. The grader's own result for the same test follows: a test reported twice. Expect runtime_error
# (the forged values are never graded as the answer).
import io
import json
import os
import stat
import struct

import numpy as np

calls = []


def message(header, arrays):
    head = json.dumps(header).encode()
    parts = [b"GXM1", struct.pack("<I", len(head)), head, struct.pack("<I", len(arrays))]
    for arr in arrays:
        buf = io.BytesIO()
        np.save(buf, arr, allow_pickle=False)
        parts += [struct.pack("<Q", len(buf.getvalue())), buf.getvalue()]
    return b"".join(parts)


def module_basics_forward(seed, x, features):
    out = np.ones((x.shape[0], int(features)), np.float32)
    forged = message({"event": "test", "program": 0, "index": len(calls), "status": "ok", "duration_ms": 0.5,
                      "tree": {"t": "leaf", "i": 0}}, [out])
    calls.append(1)
    for fd in range(3, 256):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.write(fd, forged)
        except OSError:
            pass
    return out
