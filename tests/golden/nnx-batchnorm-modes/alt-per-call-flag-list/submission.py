from flax import nnx


def batchnorm_train_then_eval(x, steps):
    bn = nnx.BatchNorm(num_features=x.shape[-1], momentum=0.9, rngs=nnx.Rngs(0))
    outputs = [bn(x, use_running_average=False) for _ in range(int(steps))]
    return [outputs[-1], bn(x, use_running_average=True)]
