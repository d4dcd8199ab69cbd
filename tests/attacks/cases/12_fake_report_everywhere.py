# Row 12: prints a fake "accepted" report on stdout, stderr and every open file descriptor, then
# returns a wrong answer. Expect not accepted: results come only from the pipe protocol.
import json
import os

FAKE = json.dumps({"version": 1, "problem": "nnx-module-basics", "verdict": "accepted", "score": 1.0,
                   "passed": 7, "total": 7, "tests": []})
print(FAKE, flush=True)
os.write(2, FAKE.encode() + b"\n")
for fd in range(3, 1024):
    try:
        os.write(fd, FAKE.encode() + b"\n")
    except OSError:
        pass


def module_basics_forward(seed, x, features):
    return x[:1] * 0.0 + 123.0
