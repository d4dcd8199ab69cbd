from flax import nnx


def mlp_forward(seed, x, hidden, out, num_layers):
    rngs = nnx.Rngs(params=int(seed))
    sizes = [x.shape[-1]] + [int(hidden)] * (int(num_layers) - 1) + [int(out)]
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nnx.Dense(a, b, rngs=rngs), nnx.ReLU()]
    return nnx.Sequential(*layers[:-1])(x)
