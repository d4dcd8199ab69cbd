# Row 16: returns a scalar where a 1-D array is expected. Expect wrong_answer (shape), no broadcasting.
def module_basics_forward(seed, x, features):
    return 0.5
