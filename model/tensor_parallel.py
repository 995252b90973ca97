"""Tensor-parallel AR decoding: each device holds a slice of every weight matrix.

The Megatron split, over a one-axis mesh of n devices: attention by heads (q, k, v and the KV
cache by head; the output projection by its input rows), the MLP by hidden unit (its input
projection by column, its output one by row), the LM head by vocabulary column. Each block
then ends its attention and its MLP with one all-reduce of a [B, T, D] partial sum, and the
logits are gathered once per step. A decode step at batch 8 is weight-bound, so each device
streams 1/n of the bytes. Embeddings and LayerNorms are replicated (a lookup reads B rows).

`shard_decoder` places a Decoder's weights on the mesh once; `tensor_parallel_generate` is
`generate` on them, one `shard_map` around the whole prefill and decode loop (model/sampling.py's,
unchanged), so sampling parameters stay traced and never recompile. Greedy tokens equal
`generate`'s; logits differ by float rounding (the all-reduce sums in another order).
"""

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from model.attention import SLOT_AXIS, cached_attention, write_slots
from model.cache import KVCache
from model.config import ModelConfig
from model.decoder import Decoder, default_positions
from model.masks import EMPTY
from model.sampling import GenerateOutput, checked_generate_arguments, generate_body

AXIS = "tensor"


class ShardedDecoder(NamedTuple):
    """A Decoder's weights placed on a mesh by `shard_decoder`."""

    graphdef: nnx.GraphDef
    state: nnx.State  # Each device's arrays are its slice (qkv columns grouped by device).
    mesh: Mesh
    cfg: ModelConfig


def decode_mesh(devices: int = 2) -> Mesh | None:
    """A mesh of the first `devices` CPU devices when JAX runs on the CPU and has that many
    (forced host devices, `jax_num_cpu_devices`); None elsewhere, where `generate` is used."""
    if devices < 2 or jax.default_backend() != "cpu" or jax.device_count() < devices:
        return None
    return Mesh(np.array(jax.devices()[:devices]), (AXIS,))


# The parameters that are split, by the end of their path, and the axis each is split along.
SPLIT_AXIS = {
    "attn/qkv/kernel": 1, "attn/qkv/bias": 0, "attn/out/kernel": 0,
    "mlp_in/kernel": 1, "mlp_in/bias": 0, "mlp_out/kernel": 0,
    "lm_head/kernel": 1, "lm_head/bias": 0,
}  # fmt: skip


def _name(path) -> str:
    return "/".join(str(getattr(key, "key", key)) for key in path)


def _spec(path) -> PartitionSpec:
    """A parameter's PartitionSpec: split along its SPLIT_AXIS, else replicated."""
    name = _name(path)
    axis = next((a for end, a in SPLIT_AXIS.items() if name.endswith(end)), None)
    return PartitionSpec() if axis is None else PartitionSpec(*([None] * axis), AXIS)


def _param_specs(state: nnx.State) -> nnx.State:
    return jax.tree_util.tree_map_with_path(lambda p, _: _spec(p), state, is_leaf=_is_variable)


def _is_variable(x) -> bool:
    return isinstance(x, nnx.Variable)


def _by_device(name: str, value: np.ndarray, cfg: ModelConfig, n: int) -> np.ndarray:
    """`value` reordered so that its n equal slices are the devices' own: qkv's columns,
    [q | k | v] by head, become [q, k, v of device 0's heads | ...]; the LM head is padded
    to a vocabulary divisible by n (the padded logits are dropped after the gather)."""
    if name.endswith(("attn/qkv/kernel", "attn/qkv/bias")):
        lead = value.shape[:-1]
        grouped = value.reshape(*lead, 3, n, cfg.num_heads // n, cfg.head_dim)
        return np.moveaxis(grouped, -3, -4).reshape(*lead, 3 * cfg.d_model)
    if name.endswith(("lm_head/kernel", "lm_head/bias")):
        return np.pad(value, [(0, 0)] * (value.ndim - 1) + [(0, -cfg.vocab_size % n)])
    return value


def shard_decoder(model: Decoder, mesh: Mesh) -> ShardedDecoder:
    """`model`'s weights split over `mesh`'s one axis (heads, MLP units, vocabulary)."""
    cfg, n = model.cfg, mesh.devices.size
    if type(model).cross_attention:
        raise ValueError("tensor-parallel decoding takes a decoder without cross-attention")
    if cfg.num_heads % n or cfg.d_ff % n:
        raise ValueError(
            f"num_heads ({cfg.num_heads}) and d_ff ({cfg.d_ff}) must divide by the {n} devices"
        )
    graphdef, state = nnx.split(model)

    def place(path, variable):
        value = _by_device(_name(path), np.asarray(variable.get_value()), cfg, n)
        return variable.replace(jax.device_put(value, NamedSharding(mesh, _spec(path))))

    state = jax.tree_util.tree_map_with_path(place, state, is_leaf=_is_variable)
    return ShardedDecoder(graphdef, state, mesh, cfg)


def _row_parallel(linear: nnx.Linear, x: jax.Array) -> jax.Array:
    """A linear layer whose kernel rows are split: the devices' partial products, summed once,
    then the bias (added once, not once per device)."""
    partial = jnp.dot(x.astype(linear.dtype), linear.kernel[...].astype(linear.dtype))
    bias = linear.bias[...].astype(linear.dtype)
    return jax.lax.psum(partial, AXIS) + bias.reshape((1,) * (x.ndim - 1) + (-1,))


class _DeviceSlice:
    """One device's slice of a sharded Decoder, called like the Decoder with a cache.

    Its `cfg` has this device's heads (and d_model = heads x head_dim), which sizes its KV
    cache; the forward pass is Decoder.from_embeddings' and SelfAttention's cached path, with
    the two all-reduces per block and the logits gathered over the vocabulary.
    """

    def __init__(self, model: Decoder, n: int):
        self.model = model
        self.cfg = dataclasses.replace(
            model.cfg, num_heads=model.cfg.num_heads // n, d_model=model.cfg.d_model // n
        )

    def __call__(
        self, tokens_BxT, *, positions_BxT=None, lengths_B=None, prefix_lengths_B=None, cache
    ) -> tuple[jax.Array, KVCache]:
        model, T = self.model, tokens_BxT.shape[1]
        positions_BxT = default_positions(tokens_BxT, positions_BxT)
        x_BxTxD = model.embed(tokens_BxT, positions_BxT).astype(model.cfg.compute_dtype)
        new_key_positions_BxT = positions_BxT
        if lengths_B is not None:
            real_BxT = jnp.arange(T)[None, :] < lengths_B[:, None]
            new_key_positions_BxT = jnp.where(real_BxT, positions_BxT, EMPTY)
        key_positions_BxS = write_slots(
            cache.key_positions_BxS, new_key_positions_BxT, cache.index, axis=1
        )
        mask_Bx1xTxS = model.self_attention_mask(positions_BxT, key_positions_BxS, prefix_lengths_B)
        layers = []
        for block, layer in zip(model.blocks, cache.layers, strict=True):
            x_BxTxD, layer = self._block(block, x_BxTxD, mask_Bx1xTxS, layer, cache.index)
            layers.append(layer)
        logits_BxTxVn = model.lm_head(model.ln_final(x_BxTxD)).astype(jnp.float32)
        logits_BxTxV = jax.lax.all_gather(logits_BxTxVn, AXIS, axis=2, tiled=True)
        new_cache = cache._replace(
            layers=tuple(layers), key_positions_BxS=key_positions_BxS, index=cache.index + T
        )
        return logits_BxTxV[..., : model.cfg.vocab_size], new_cache

    def _block(self, block, x_BxTxD, mask_Bx1xTxS, layer, cache_index):
        """Block.__call__ on this device's heads and MLP units; one all-reduce after each."""
        B, T, _ = x_BxTxD.shape
        H, K = self.cfg.num_heads, self.cfg.head_dim
        qkv_BxTx3xHxK = block.attn.qkv(block.ln_attn(x_BxTxD)).reshape(B, T, 3, H, K)
        q_BxTxHxK, k_BxTxHxK, v_BxTxHxK = (qkv_BxTx3xHxK[:, :, i] for i in range(3))
        new = {"k": k_BxTxHxK.transpose(0, 2, 3, 1), "v": v_BxTxHxK.swapaxes(1, 2)}
        layer = {n: write_slots(layer[n], new[n], cache_index, SLOT_AXIS[n]) for n in ("k", "v")}
        k_BxHxKxS, v_BxHxSxK = (layer[n].astype(q_BxTxHxK.dtype) for n in ("k", "v"))
        y_BxTxHxK = cached_attention(q_BxTxHxK, k_BxHxKxS, v_BxHxSxK, mask_Bx1xTxS)
        x_BxTxD = x_BxTxD + _row_parallel(block.attn.out, y_BxTxHxK.reshape(B, T, H * K))
        h_BxTxF = jax.nn.gelu(block.mlp_in(block.ln_mlp(x_BxTxD)))
        return x_BxTxD + _row_parallel(block.mlp_out, h_BxTxF), layer


@functools.partial(
    jax.jit, static_argnames=("graphdef", "mesh", "max_new_tokens", "cache_phases", "pad_id")
)
def _generate_jit(
    graphdef, mesh, state, prompts_BxP, prompt_lengths_B, rng, sampling, eos_id, *,
    max_new_tokens, cache_phases, pad_id,
):  # fmt: skip
    def per_device(state, *args):
        model = _DeviceSlice(nnx.merge(graphdef, state), mesh.devices.size)
        return generate_body(
            model, *args, max_new_tokens=max_new_tokens, use_cache=True,
            cache_phases=cache_phases, pad_id=pad_id,
        )  # fmt: skip

    args = (prompts_BxP, prompt_lengths_B, rng, sampling, eos_id)
    replicated = PartitionSpec()
    # check_vma=False: the loop carries the cache (split) and the tokens (replicated) together;
    # every replicated output is computed from gathered or all-reduced values on every device.
    return jax.shard_map(
        per_device,
        mesh=mesh,
        in_specs=(_param_specs(state),) + (replicated,) * len(args),
        out_specs=replicated,
        check_vma=False,
    )(state, *args)


def tensor_parallel_generate(
    sharded: ShardedDecoder,
    prompts_BxP,
    prompt_lengths_B=None,
    *,
    max_new_tokens: int,
    rng: jax.Array | None = None,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    eos_id: int | None = None,
    pad_id: int = 0,
    cache_phases: int | None = None,
) -> GenerateOutput:
    """`generate` (with its KV cache) on a `shard_decoder` model: the same arguments and
    greedy tokens, each device streaming its slice of the weights."""
    args, static = checked_generate_arguments(
        sharded.cfg, prompts_BxP, prompt_lengths_B, max_new_tokens, rng, temperature, top_k,
        top_p, eos_id, pad_id, cache_phases,
    )  # fmt: skip
    return _generate_jit(sharded.graphdef, sharded.mesh, sharded.state, *args, **static)
