from flax import nnx

def module_basics_forward(seed, x, features)
    return x
