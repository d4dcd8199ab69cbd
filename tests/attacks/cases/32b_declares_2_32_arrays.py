# Row 32: writes a message that declares 2^32-1 arrays, then trickles 8-byte entries for a minute. Before:
# the parent re-scanned the incomplete message on every read, ~20 CPU-s per submission in the web
# server's process. Expect runtime_error within seconds, the parent's CPU small.
import os
import stat
import struct
import time

head = b'{"event":"test","program":0,"index":0,"status":"ok","duration_ms":1.0,"tree":{"t":"leaf","i":0}}'
pipes = []
for fd in range(3, 256):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, b"GXM1" + struct.pack("<I", len(head)) + head + struct.pack("<I", 2**32 - 1))
            pipes.append(fd)
    except OSError:
        pass
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    for fd in pipes:
        try:
            os.write(fd, struct.pack("<Q", 8))
        except OSError:
            pass
    time.sleep(0.001)


def module_basics_forward(seed, x, features):
    return x
