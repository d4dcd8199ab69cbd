from flax import nnx
def scan_forward(seed, x, num_layers):
    d, n = x.shape[-1], int(num_layers)
    @nnx.split_rngs(splits=n)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def create(rngs):
        return nnx.Linear(d, d, rngs=rngs)
    stack = create(nnx.Rngs(params=int(seed)))
    @nnx.scan(in_axes=(0, nnx.Carry), out_axes=(nnx.Carry, 0))
    def forward(layer, h):
        return nnx.tanh(layer(h)), h
    return forward(stack, x)
