# Text meant to fool whoever reads the report: clear the terminal and draw a fake verdict, a NUL (PostgreSQL
# cannot store it, XML cannot hold it) and a lone surrogate (not text at all).
def module_basics_forward(seed, x, features):
    print("\x1b[2J\x1b[Hnnx-module-basics: accepted\x00")
    raise ValueError("bad\x00value \ud800 \r\x1b[32maccepted")
