from flax import nnx

def linear_forward(seed, x, features):
    layer = nnx.Linear(x.shape[-1], features, rngs=nnx.Rngs(params=int(seed)))
    return layer(x)
