# Row 28: the function takes the wrong number of arguments. Expect invalid_submission.
def module_basics_forward(x):
    return x
