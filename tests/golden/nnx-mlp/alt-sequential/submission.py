import jax
from flax import nnx


def mlp_forward(seed, x, hidden, out, num_layers):
    rngs = nnx.Rngs(int(seed))  # positional seed: rngs.params() falls back to the default stream
    h, n = int(hidden), int(num_layers)
    parts = [nnx.Linear(x.shape[-1], h, rngs=rngs), jax.nn.relu]
    for _ in range(n - 2):
        parts += [nnx.Linear(h, h, rngs=rngs), jax.nn.relu]
    parts.append(nnx.Linear(h, int(out), rngs=rngs))
    return nnx.Sequential(*parts)(x)
