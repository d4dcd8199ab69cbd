from flax import nnx

def batchnorm_train_then_eval(x, steps):
    bn = nnx.BatchNorm(x.shape[-1], momentum=0.9, rngs=nnx.Rngs(0))
    for _ in range(int(steps)):
        train_out = bn(x)
    eval_bn = nnx.BatchNorm(x.shape[-1], momentum=0.9, rngs=nnx.Rngs(0))
    eval_bn.eval()
    return train_out, eval_bn(x)
