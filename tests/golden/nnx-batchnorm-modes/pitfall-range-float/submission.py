from flax import nnx

def batchnorm_train_then_eval(x, steps):
    bn = nnx.BatchNorm(x.shape[-1], momentum=0.9, rngs=nnx.Rngs(0))
    for _ in range(steps):
        train_out = bn(x)
    bn.eval()
    return train_out, bn(x)
