# Row 31: during a test, writes that test's result itself with `duration_ms` as an object. Before: copied
# into the report, the database insert failed, the attempt stayed `running` for 24 h. Expect
# runtime_error, and nothing of the forged message in the report.
import io
import json
import os
import stat
import struct

import numpy as np


def npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def forge(index):
    header = {"event": "test", "program": 0, "index": index, "status": "ok", "duration_ms": {"__MARKER__": 1},
              "tree": {"t": "leaf", "i": 0}}
    head = json.dumps(header).encode()
    data = npy(np.zeros(4, np.float32))
    return b"GXM1" + struct.pack("<I", len(head)) + head + struct.pack("<IQ", 1, len(data)) + data


calls = []


def module_basics_forward(seed, x, features):
    for fd in range(3, 256):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.write(fd, forge(len(calls)))
        except OSError:
            pass
    calls.append(1)
    return np.zeros((x.shape[0], int(features)), np.float32)
