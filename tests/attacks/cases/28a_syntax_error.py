# Row 28: a syntax error. Expect syntax_error with the line.
def module_basics_forward(seed, x, features)
    return x
