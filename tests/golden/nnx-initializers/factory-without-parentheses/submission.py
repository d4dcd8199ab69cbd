from flax import nnx
def init_and_forward(seed, x, hidden):
    rngs = nnx.Rngs(params=int(seed))
    l1 = nnx.Linear(x.shape[-1], int(hidden), kernel_init=nnx.initializers.he_normal, bias_init=nnx.initializers.constant(0.1), rngs=rngs)
    l2 = nnx.Linear(int(hidden), 1, kernel_init=nnx.initializers.xavier_uniform(), rngs=rngs)
    return l1.kernel[...], l2.kernel[...], l2(nnx.relu(l1(x)))
