import jax
from flax import nnx
def mlp_forward(seed, x, hidden, out, num_layers):
    rngs = nnx.Rngs(params=int(seed)); n = int(num_layers)
    sizes = [x.shape[-1]] + [int(hidden)] * (n - 1) + [int(out)]
    layers = nnx.List([nnx.Linear(a, b, use_bias=False, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
    for l in layers[:-1]: x = nnx.relu(l(x))
    return layers[-1](x)
