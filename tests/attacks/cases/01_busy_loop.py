# Row 1: an endless Python loop in the graded call. Expect time_limit_exceeded (killed from outside).
def module_basics_forward(seed, x, features):
    while True:
        pass
