# jax.nn.standardize: a one-pass variance, whose cancellation on the large-mean test also rounds differently for one
# row alone. The values stage reports it (not "changes with the other rows": no rows mix here), with the advice.
import jax

def layer_norm_forward(x, scale, bias):
    return jax.nn.standardize(x, axis=-1, epsilon=1e-6) * scale + bias
