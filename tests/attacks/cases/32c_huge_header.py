# Row 32: declares a 4 GiB header and then trickles it a byte at a time. Expect runtime_error within
# seconds: the declared size is refused before anything is awaited or allocated.
import os
import stat
import struct
import time

pipes = []
for fd in range(3, 256):
    try:
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.write(fd, b"GXM1" + struct.pack("<I", 2**32 - 1))
            pipes.append(fd)
    except OSError:
        pass
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    for fd in pipes:
        try:
            os.write(fd, b"{")
        except OSError:
            pass
    time.sleep(0.001)


def module_basics_forward(seed, x, features):
    return x
