# Row 31: finds the result pipe and writes a well-framed message with a missing field ({"event": "start"}
# without index) while the file is loaded. Before: KeyError in the parent, internal_error, retried 3 times.
# Expect runtime_error blamed on the submission, at once.
import json
import os
import stat
import struct


def result_pipes():
    for fd in range(3, 256):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                yield fd
        except OSError:
            pass


def frame(header, arrays=()):
    head = json.dumps(header).encode()
    return b"GXM1" + struct.pack("<I", len(head)) + head + struct.pack("<I", len(arrays))


for fd in result_pipes():
    try:
        os.write(fd, frame({"event": "start"}))
    except OSError:
        pass


def module_basics_forward(seed, x, features):
    return x
