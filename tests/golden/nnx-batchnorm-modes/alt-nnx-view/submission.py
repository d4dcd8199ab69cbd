from flax import nnx


class Net(nnx.Module):
    def __init__(self, n):
        self.bn = nnx.BatchNorm(n, momentum=0.9, rngs=nnx.Rngs(0))

    def __call__(self, x):
        return self.bn(x)


def batchnorm_train_then_eval(x, steps):
    net = Net(x.shape[-1])
    net.train()
    for _ in range(int(steps)):
        y = net(x)
    evaluator = nnx.view(net, use_running_average=True)  # shares the running statistics
    return y, evaluator(x)
