from flax import nnx

class MLP(nnx.Module):
    def __init__(self, sizes, seed):
        rngs = nnx.Rngs(params=seed)
        self.layers = nnx.List([])
        for a, b in zip(sizes[:-1], sizes[1:]):
            self.layers.append(nnx.Linear(a, b, rngs=rngs))

    def __call__(self, x):
        for layer in self.layers[:-1]:
            x = nnx.relu(layer(x))
        return self.layers[-1](x)

def mlp_forward(seed, x, hidden, out, num_layers):
    sizes = [x.shape[-1]] + [int(hidden)] * (int(num_layers) - 2) + [int(out)]
    return MLP(sizes, int(seed))(x)
