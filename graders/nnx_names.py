"""What to use instead of a name `flax.nnx` does not have: the names students bring from PyTorch, Keras and Flax
Linen (`nnx.Dense`, `nnx.Conv2D`, `nnx.ReLU`, `nnx.compact`), and functions that live elsewhere.

Used by the `nnx-name-missing` pitfall (graders/diagnose.py) on the AttributeError Flax 0.12 raises:
"Module flax.nnx has no attribute 'Dense'".
"""

from __future__ import annotations

ACTIVATIONS = ("relu", "gelu", "sigmoid", "tanh", "softmax", "silu", "elu", "leaky_relu", "softplus", "log_softmax")

_CONV = ("`nnx.Conv(in_features, out_features, kernel_size=(3, 3), rngs=rngs)`: one class for 1-, 2- and 3-D, "
         "channels last")
_BATCHNORM = "`nnx.BatchNorm(num_features, rngs=rngs)`"
_DROPOUT = "`nnx.Dropout(rate, rngs=rngs)` (`broadcast_dims=` drops whole channels)"

# By the name as written, lowercased and without underscores: what to write instead.
INSTEAD: dict[str, str] = {
    "dense": "`nnx.Linear(in_features, out_features, rngs=rngs)` (Dense is the Linen and Keras name)",
    **{name: _CONV for name in ("conv1d", "conv2d", "conv3d", "convolution", "convolution2d")},
    **{name: _BATCHNORM for name in ("batchnormalization", "batchnorm1d", "batchnorm2d", "batchnorm3d")},
    "layernormalization": "`nnx.LayerNorm(num_features, rngs=rngs)`",
    "embedding": "`nnx.Embed(num_embeddings, features, rngs=rngs)`",
    "parameter": "`nnx.Param(value)`, assigned as a module attribute in `__init__`",
    "compact": "no decorator: an NNX module builds its layers in `__init__` and uses them in `__call__` "
               "(`@nn.compact` is Flax Linen)",
    "flatten": "`x.reshape(x.shape[0], -1)` (no layer needed)",
    **{name: "the function `nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))`"
       for name in ("maxpool", "maxpool1d", "maxpool2d", "maxpooling2d")},
    **{name: "the function `nnx.avg_pool(x, window_shape=(2, 2), strides=(2, 2))`"
       for name in ("avgpool", "avgpool2d", "averagepooling2d")},
    "lstm": "`nnx.RNN(nnx.LSTMCell(in_features, hidden_features, rngs=rngs))`",
    "gru": "`nnx.RNN(nnx.GRUCell(in_features, hidden_features, rngs=rngs))`",
    **{name: _DROPOUT for name in ("dropout1d", "dropout2d", "dropout3d")},
    "dotproductattentionweights": "`flax.nnx.nn.attention.dot_product_attention_weights(query, key, mask=...)` "
                                  "(not exported as `nnx.`), or `jax.nn.softmax(scores, axis=-1)` of your own scores",
    "sequentialmodule": "`nnx.Sequential(layer, nnx.relu, layer)`",
    "modulelist": "`nnx.List([...])` (PyTorch's ModuleList)",
    "moduledict": "`nnx.Dict({...})` (PyTorch's ModuleDict)",
}


def instead_of(name: str) -> str | None:
    """What to write for `nnx.<name>`, or None when nothing specific is known."""
    key = name.lower().replace("_", "")
    if key in INSTEAD:
        return INSTEAD[key]
    for activation in ACTIVATIONS:
        if key == activation.replace("_", ""):
            return (f"the function `nnx.{activation}` (an activation is a function, not a layer: `nnx.Sequential` "
                    "takes it as it is)")
    if "loss" in key or "entropy" in key or key.startswith("mse"):
        return ("a loss from `optax` (`optax.softmax_cross_entropy_with_integer_labels`, `optax.l2_loss`), or the "
                "formula written with `jnp`")
    return None


def advice(name: str) -> str:
    found = instead_of(name)
    if found is not None:
        return f"`flax.nnx` has no `{name}`: use {found}."
    return (f"`flax.nnx` (Flax 0.12) has no `{name}`: check the name against the NNX API. Layers are classes "
            "(`nnx.Linear`, `nnx.Conv`, `nnx.LayerNorm`), activations and pooling are functions (`nnx.relu`, "
            "`nnx.max_pool`), and losses live in `optax`.")
