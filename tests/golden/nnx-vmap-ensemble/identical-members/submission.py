from flax import nnx
def ensemble_forward(seed, x, members, out):
    n, i, o = int(members), x.shape[-1], int(out)
    @nnx.vmap(in_axes=(None,), out_axes=0, axis_size=n)
    def create(rngs):
        return nnx.Linear(i, o, rngs=rngs)
    ens = create(nnx.Rngs(params=int(seed)))
    ys = nnx.vmap(lambda m, x: nnx.tanh(m(x)), in_axes=(0, None), out_axes=0)(ens, x)
    return ys, ys.mean(0)
