from flax import nnx
def module_basics_forward(seed, x, features):
    return nnx.Linear(x.shape[-1], int(features), rngs=nnx.Rngs(int(seed)))(x)
