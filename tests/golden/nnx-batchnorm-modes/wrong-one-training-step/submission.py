from flax import nnx

def batchnorm_train_then_eval(x, steps):
    bn = nnx.BatchNorm(x.shape[-1], momentum=0.9, rngs=nnx.Rngs(0))
    train_out = bn(x)  # steps ignored
    bn.eval()
    return train_out, bn(x)
