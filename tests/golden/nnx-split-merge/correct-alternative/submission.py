import jax
from flax import nnx


def split_merge_update(seed, x, features):
    rngs = nnx.Rngs(params=int(seed))
    model = nnx.Sequential(
        nnx.Linear(x.shape[-1], int(features), rngs=rngs),
        nnx.BatchNorm(int(features), momentum=0.9, rngs=rngs),
    )
    graphdef, state = nnx.split(model)

    @jax.jit
    def step(state, x):
        copy = nnx.merge(graphdef, state)
        y = copy(x)
        return y, nnx.state(copy)

    y_train, new_state = step(state, x)
    nnx.update(model, new_state)
    bn = model.layers[1]
    return y_train, bn.mean[...], bn.var[...], _eval(model, x)


def _eval(model, x):
    model.eval()
    return model(x)
