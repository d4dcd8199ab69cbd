# Row 4: catches BaseException around everything and keeps spinning. Expect time_limit_exceeded.
def module_basics_forward(seed, x, features):
    while True:
        try:
            while True:
                pass
        except BaseException:
            continue
