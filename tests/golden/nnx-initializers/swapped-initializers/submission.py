from flax import nnx
def init_and_forward(seed, x, hidden):
    rngs = nnx.Rngs(params=int(seed)); i = nnx.initializers
    l1 = nnx.Linear(x.shape[-1], int(hidden), kernel_init=i.xavier_uniform(), bias_init=i.constant(0.1), rngs=rngs)
    l2 = nnx.Linear(int(hidden), 1, kernel_init=i.he_normal(), rngs=rngs)
    return l1.kernel[...], l2.kernel[...], l2(nnx.relu(l1(x)))
