# Row 25: unbounded recursion through C (map calls back into Python) with a huge recursion limit, so
# the C stack overflows and the process segfaults. Expect runtime_error and no core file.
import sys

sys.setrecursionlimit(10**9)


def down(n):
    return list(map(down, [n + 1]))


def module_basics_forward(seed, x, features):
    return down(0)
