# Row 14: returns an object whose __array__ runs code (writes a marker file, then raises).
# Expect runtime_error; the code runs only inside the sandbox, so no marker file on the host.
class Sneaky:
    def __array__(self, dtype=None, copy=None):
        for path in ("/tmp/__MARKER__-array", "__ROOT__/__MARKER__-array"):
            try:
                with open(path, "w") as fh:
                    fh.write("ran")
            except OSError:
                pass
        raise RuntimeError("__array__ ran")


def module_basics_forward(seed, x, features):
    return Sneaky()
