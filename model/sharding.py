"""Logical axis names of every parameter, and the FSDP rule that maps them onto a mesh.

Each parameter carries the names of its dimensions (flax's `nnx.with_partitioning`):
  vocab (token ids), embed (d_model), heads (the q/k/v projection's output), mlp (d_ff),
  positions (max_len).
Fully sharded data parallelism splits each tensor along one of its dimensions over the mesh axis
"fsdp": the first dimension, in FSDP_PRIORITY order, whose size divides by the axis size. Every
matrix has an `embed` dimension, so every matrix is sharded as long as d_model divides; a vector
is sharded too where its size allows (a 21-entry vocabulary bias over 4 devices is not).
"""

from collections.abc import Callable

from flax import nnx
from jax.sharding import PartitionSpec

FSDP_AXIS = "fsdp"
FSDP_PRIORITY = ("embed", "mlp", "heads", "vocab", "positions")


def named(init: Callable, *names: str) -> Callable:
    """An initializer whose parameter records the logical names of its dimensions."""
    return nnx.with_partitioning(init, names)


def linear(features_in: int, features_out: int, names: tuple[str, str], **kw) -> nnx.Linear:
    """nnx.Linear with flax's default initializers, its kernel and bias named."""
    return nnx.Linear(
        features_in,
        features_out,
        kernel_init=named(nnx.initializers.lecun_normal(), *names),
        bias_init=named(nnx.initializers.zeros_init(), names[1]),
        **kw,
    )


def layer_norm(features: int, **kw) -> nnx.LayerNorm:
    """nnx.LayerNorm with flax's default initializers, scale and bias named `embed`."""
    return nnx.LayerNorm(
        features,
        scale_init=named(nnx.initializers.ones_init(), "embed"),
        bias_init=named(nnx.initializers.zeros_init(), "embed"),
        **kw,
    )


def fsdp_spec(names: tuple | None, shape: tuple[int, ...], fsdp: int) -> PartitionSpec:
    """The mesh PartitionSpec of a parameter with logical `names`: one dimension over "fsdp"."""
    if fsdp == 1 or not names:
        return PartitionSpec()
    for name in FSDP_PRIORITY:
        if name in names and shape[names.index(name)] % fsdp == 0:
            return PartitionSpec(*(FSDP_AXIS if n == name else None for n in names))
    return PartitionSpec()
