from flax import nnx

def batchnorm_train_then_eval(x, steps):
    bn = nnx.BatchNorm(x.shape[-1], rngs=nnx.Rngs(0))
    for _ in range(int(steps)):
        train_out = bn(x, use_running_average=False)
    return train_out, bn(x, use_running_average=True)
