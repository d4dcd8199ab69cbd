# Row 6: raises a BaseException subclass that is not an Exception. Expect runtime_error.
class Escape(BaseException):
    pass


def module_basics_forward(seed, x, features):
    raise Escape("not an Exception")
