from flax import nnx
def sequential_forward(seed, x, hidden, out):
    rngs = nnx.Rngs(params=int(seed), dropout=int(seed))
    model = nnx.Sequential(nnx.Linear(x.shape[-1], int(hidden), rngs=rngs), nnx.gelu,
                           nnx.Dropout(0.5, rngs=rngs), nnx.Linear(int(hidden), int(out), rngs=rngs))
    return model(x)
