# The statement's model without its Dropout: in evaluation mode the outputs are the same and the Dropout holds
# no variables, so only the state check's count of Dropout layers tells it apart.
from flax import nnx

def sequential_forward(seed, x, hidden, out):
    rngs = nnx.Rngs(params=int(seed), dropout=int(seed))
    model = nnx.Sequential(nnx.Linear(x.shape[-1], int(hidden), rngs=rngs), nnx.gelu,
                           nnx.Linear(int(hidden), int(out), rngs=rngs))
    return model(x)
