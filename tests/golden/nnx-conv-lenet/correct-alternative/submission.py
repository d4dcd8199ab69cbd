from flax import nnx


def lenet_forward(seed, x, num_classes):
    rngs = nnx.Rngs(params=int(seed))
    b, h, w, c = x.shape
    pool = lambda t: nnx.max_pool(t, window_shape=(2, 2), strides=(2, 2))  # noqa: E731
    model = nnx.Sequential(
        nnx.Conv(c, 4, kernel_size=(3, 3), rngs=rngs), nnx.relu, pool,
        nnx.Conv(4, 8, kernel_size=(3, 3), rngs=rngs), nnx.relu, pool,
        lambda t: t.reshape(t.shape[0], -1),
        nnx.Linear(h * w // 2, int(num_classes), rngs=rngs),
    )
    return model(x)
