# The module written in Flax Linen (@nn.compact, init/apply): right numbers, but no NNX module. The state check
# names the Linen class, and the advice says how NNX keeps parameters instead.
import jax, jax.numpy as jnp
import flax.linen as nn

class Proj(nn.Module):
    features: int
    @nn.compact
    def __call__(self, x):
        k = self.param("kernel", lambda key, shape: jax.random.normal(key, shape) / jnp.sqrt(shape[0]), (x.shape[-1], self.features))
        return x @ k

def module_basics_forward(seed, x, features):
    m = Proj(int(features))
    params = m.init(jax.random.key(int(seed)), x)
    return m.apply(params, x)
