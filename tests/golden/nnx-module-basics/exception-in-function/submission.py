def module_basics_forward(seed, x, features):
    raise ValueError("not implemented yet")
