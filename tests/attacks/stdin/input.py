# An input() left in a submission: stdin is empty while grading, so it ends at once with EOFError (before: it
# waited for the grader's own channel until the 60 s wall-clock limit).
def module_basics_forward(seed, x, features):
    features = int(input("features? "))
    return x
