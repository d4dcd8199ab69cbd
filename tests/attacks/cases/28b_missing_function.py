# Row 28: the required function is missing. Expect invalid_submission.
def forward(seed, x, features):
    return x
