# Row 32: writes a message whose JSON header nests 100 000 levels deep. Before: RecursionError killed the
# parent's reader thread silently, and a run that ended in milliseconds was reported as a time limit
# after 20 s. Expect runtime_error within seconds, the parent's CPU small.
import os
import stat
import struct
import time

head = b"[" * 100_000 + b"]" * 100_000
for fd in range(3, 256):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, b"GXM1" + struct.pack("<I", len(head)) + head + struct.pack("<I", 0))
    except OSError:
        pass
time.sleep(60)


def module_basics_forward(seed, x, features):
    return x
