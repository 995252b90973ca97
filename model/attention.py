"""The attention mask builder, multi-head self-attention with a functional KV cache, and the
encoder-decoder's cross-attention with its once-per-prompt memory.

Shape legend (used in names across model/):
  B batch, T query length, S key length (T without a cache, the cache size with one),
  D d_model, H heads, K head dim, F d_ff, V vocab, L layers.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from model import sharding
from model.config import MASK_KINDS, ModelConfig

# Head-major, {"k": [B, H, S, K], "v": [B, H, S, K]}: the CPU dot wants (B, H) as batch dims, so
# a [B, S, H, K] cache would be transposed (copied) whole at every decode step: 4-8x slower.
LayerCache = dict[str, jax.Array]

# The position recorded for a key that does not exist: padding, or a cache slot not yet written.
EMPTY = jnp.iinfo(jnp.int32).max


def make_attention_mask(
    mask_kind: str,
    query_positions_BxT: jax.Array,
    key_positions_BxS: jax.Array,
    prefix_lengths_B: jax.Array | None = None,
) -> jax.Array:
    """Boolean mask [B, 1, T, S]: True where a query may attend to a key.

    Keys are described by their token positions, with EMPTY for padding and unwritten cache
    slots, so one rule serves the full forward pass, prefill and cached decoding. EMPTY keys are
    hidden under every kind, so "full" never leaks across padding. Booleans, not a finite bias:
    models learn to get around a -1e4 bias.
    """
    if mask_kind not in MASK_KINDS:
        raise ValueError(f"mask_kind must be one of {MASK_KINDS}, got {mask_kind!r}")
    q_BxTx1 = query_positions_BxT[:, :, None]
    k_Bx1xS = key_positions_BxS[:, None, :]
    if mask_kind == "full":
        return (k_Bx1xS != EMPTY)[:, None] & (q_BxTx1 >= 0)[:, None]
    if mask_kind.startswith("prefix") and prefix_lengths_B is None:
        raise ValueError(f"mask_kind={mask_kind!r} needs prefix_lengths (one per row)")
    if mask_kind == "prefix_full":
        prefix_Bx1x1 = prefix_lengths_B[:, None, None]
        # Targets see every real key; prefix queries see prefix keys only.
        allowed_BxTxS = (k_Bx1xS != EMPTY) & ((q_BxTx1 >= prefix_Bx1x1) | (k_Bx1xS < prefix_Bx1x1))
        return allowed_BxTxS[:, None]
    allowed_BxTxS = k_Bx1xS <= q_BxTx1  # EMPTY is larger than every position.
    if mask_kind == "prefix":
        allowed_BxTxS = allowed_BxTxS | (k_Bx1xS < prefix_lengths_B[:, None, None])
    return allowed_BxTxS[:, None]


def write_slots(cache_Bx: jax.Array, new_Bx: jax.Array, index: jax.Array, axis: int) -> jax.Array:
    """`cache_Bx` with `new_Bx` written along `axis` from slot `index` on.

    A scalar index is one slot for the whole batch: an in-place dynamic_update_slice, not a
    scatter (rows may hold different positions in the same slot; the mask reads positions). An
    index per row ([B]) lets rows write at different slots: speculative decoding keeps each
    token at the slot of its position, as rows accept different numbers of tokens.
    """
    new_Bx = new_Bx.astype(cache_Bx.dtype)
    if index.ndim == 0:
        start = [0] * cache_Bx.ndim
        start[axis] = index
        return jax.lax.dynamic_update_slice(cache_Bx, new_Bx, start)

    def write_row(row, new, i):
        start = [0] * row.ndim
        start[axis - 1] = i
        return jax.lax.dynamic_update_slice(row, new, start)

    return jax.vmap(write_row)(cache_Bx, new_Bx, index)


def init_layer_cache(
    batch_size: int, cache_len: int, cfg: ModelConfig, dtype: jnp.dtype | None = None
) -> LayerCache:
    """An empty cache for one layer; the mask (not zeros) keeps unwritten slots out of reach."""
    shape = (batch_size, cfg.num_heads, cache_len, cfg.head_dim)
    dtype = dtype or cfg.compute_dtype
    return {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype)}


class SelfAttention(nnx.Module):
    """Multi-head self-attention; with a cache, new keys/values are written at `cache_index`."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        dense = dict(dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype, rngs=rngs)
        self.qkv = sharding.linear(cfg.d_model, 3 * cfg.d_model, ("embed", "heads"), **dense)
        self.out = sharding.linear(cfg.d_model, cfg.d_model, ("heads", "embed"), **dense)

    def __call__(
        self,
        x_BxTxD: jax.Array,
        mask_Bx1xTxS: jax.Array,
        cache: LayerCache | None,
        cache_index: jax.Array | None,
    ) -> tuple[jax.Array, LayerCache | None]:
        B, T, _ = x_BxTxD.shape
        H, K = self.cfg.num_heads, self.cfg.head_dim
        qkv_BxTx3xHxK = self.qkv(x_BxTxD).reshape(B, T, 3, H, K)
        q_BxTxHxK, k_BxTxHxK, v_BxTxHxK = (qkv_BxTx3xHxK[:, :, i] for i in range(3))
        if cache is not None:
            k_BxHxSxK = write_slots(cache["k"], k_BxTxHxK.swapaxes(1, 2), cache_index, axis=2)
            v_BxHxSxK = write_slots(cache["v"], v_BxTxHxK.swapaxes(1, 2), cache_index, axis=2)
            cache = {"k": k_BxHxSxK, "v": v_BxHxSxK}
            # XLA cancels this swap against the one inside dot_product_attention: no copy.
            k_BxSxHxK, v_BxSxHxK = k_BxHxSxK.swapaxes(1, 2), v_BxHxSxK.swapaxes(1, 2)
        else:
            k_BxSxHxK, v_BxSxHxK = k_BxTxHxK, v_BxTxHxK
        # implementation=None: XLA on CPU/TPU; no is_causal, the mask carries causality (flax#5591).
        y_BxTxHxK = jax.nn.dot_product_attention(
            q_BxTxHxK,
            k_BxSxHxK.astype(q_BxTxHxK.dtype),
            v_BxSxHxK.astype(q_BxTxHxK.dtype),
            mask=mask_Bx1xTxS,
        )
        return self.out(y_BxTxHxK.reshape(B, T, H * K)), cache


class Memory(NamedTuple):
    """What an encoder-decoder's decoder reads from the encoder (model/encoder_decoder.py).

    Computed once per prompt and kept in `KVCache.memory`, so decode steps never run the encoder.
    """

    # Each decoder layer's cross-attention keys and values, {"k", "v"}: [B, H, P, K]; or, with
    # ModelConfig.cross_kv_cache=False, () and the layers project `states_BxPxD` at every call.
    layers: tuple[LayerCache, ...]
    states_BxPxD: jax.Array | None  # The encoder output; None once `layers` holds its K/V.
    key_positions_BxP: jax.Array  # The position of each source token; EMPTY elsewhere.


class CrossAttention(nnx.Module):
    """Multi-head attention from the decoder's states to the encoder output (every source token)."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        dense = dict(dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype, rngs=rngs)
        self.q = sharding.linear(cfg.d_model, cfg.d_model, ("embed", "heads"), **dense)
        self.kv = sharding.linear(cfg.d_model, 2 * cfg.d_model, ("embed", "heads"), **dense)
        self.out = sharding.linear(cfg.d_model, cfg.d_model, ("heads", "embed"), **dense)

    def keys_values(self, states_BxPxD: jax.Array) -> LayerCache:
        """This layer's keys and values of the encoder output, head-major as the KV cache is."""
        B, P, _ = states_BxPxD.shape
        kv_BxPx2xHxK = self.kv(states_BxPxD).reshape(B, P, 2, self.cfg.num_heads, -1)
        return {
            "k": kv_BxPx2xHxK[:, :, 0].swapaxes(1, 2),
            "v": kv_BxPx2xHxK[:, :, 1].swapaxes(1, 2),
        }

    def __call__(self, x_BxTxD: jax.Array, kv: LayerCache, mask_Bx1xTxP: jax.Array) -> jax.Array:
        B, T, _ = x_BxTxD.shape
        H, K = self.cfg.num_heads, self.cfg.head_dim
        q_BxTxHxK = self.q(x_BxTxD).reshape(B, T, H, K)
        y_BxTxHxK = jax.nn.dot_product_attention(
            q_BxTxHxK,
            kv["k"].swapaxes(1, 2).astype(q_BxTxHxK.dtype),
            kv["v"].swapaxes(1, 2).astype(q_BxTxHxK.dtype),
            mask=mask_Bx1xTxP,
        )
        return self.out(y_BxTxHxK.reshape(B, T, H * K))
