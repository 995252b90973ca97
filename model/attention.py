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

from model import masks, sharding
from model.config import ModelConfig

# Head-major, {"k": [B, H, K, S], "v": [B, H, S, K]}: keys slot-minor, values slot-major. A decode
# step's attention (`cached_attention`) is then two multiply-reduces along each array's
# contiguous axis (scores along S, outputs along K); with batched dots over (B, H) a decode step
# took 1.12x as long at batch 8 and 1.19x at batch 1 (medians; benchmarks/sampling.py has the
# figures). A [B, S, H, K] cache would be transposed (copied) whole at every decode step.
LayerCache = dict[str, jax.Array]
SLOT_AXIS = {"k": 3, "v": 2}  # The axis of a layer cache's arrays along which slots lie.


def make_attention_mask(
    mask_kind: str,
    query_positions_BxT: jax.Array,
    key_positions_BxS: jax.Array,
    prefix_lengths_B: jax.Array | None = None,
    *,
    block_size: int = 1,
    noisy_queries_BxT: jax.Array | None = None,
    noisy_keys_BxS: jax.Array | None = None,
) -> jax.Array:
    """Boolean mask [B, 1, T, S]: True where a query may attend to a key, by the rule of the
    registered kind `mask_kind` (model/masks.py).

    Keys are described by their token positions, with EMPTY for padding and unwritten cache
    slots, so one rule serves the full forward pass, prefill and cached decoding. EMPTY keys are
    hidden under every kind, so "full" never leaks across padding. Booleans, not a finite bias:
    models learn to get around a -1e4 bias. `noisy_*` (block diffusion's one training pass over
    a clean and a noised copy of the row) go to the kinds that take them.
    """
    kind = masks.mask_kind(mask_kind)
    if (noisy_queries_BxT is None) != (noisy_keys_BxS is None) or (
        noisy_queries_BxT is not None and not kind.takes_noisy
    ):
        takers = masks.kinds_where(lambda k: k.takes_noisy)
        raise ValueError(f"noisy_queries and noisy_keys go together, with a mask kind in {takers}")
    if kind.needs_prefix and prefix_lengths_B is None:
        raise ValueError(f"mask_kind={mask_kind!r} needs prefix_lengths (one per row)")
    context = masks.MaskContext(
        query_positions_BxT, key_positions_BxS, prefix_lengths_B, block_size,
        noisy_queries_BxT, noisy_keys_BxS,
    )  # fmt: skip
    return kind.build(context)[:, None]


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
    H, K = cfg.num_heads, cfg.head_dim
    dtype = dtype or cfg.compute_dtype
    return {
        "k": jnp.zeros((batch_size, H, K, cache_len), dtype),
        "v": jnp.zeros((batch_size, H, cache_len, K), dtype),
    }


def cached_attention(
    q_BxTxHxK: jax.Array, k_BxHxKxS: jax.Array, v_BxHxSxK: jax.Array, mask_Bx1xTxS: jax.Array
) -> jax.Array:
    """Attention of T queries to a cache's keys and values; [B, T, H, K].

    The arithmetic of `jax.nn.dot_product_attention` (fp32 logits and softmax, masked logits set
    to the same large negative number), on the cache's layout. One query per row (a decode step)
    takes a multiply-reduce over K for its logits (contiguous along S) and one over S for its
    output (contiguous along K). More queries (a prefill; a speculative round's G + 1) take
    dots, which reuse each key across the queries: XLA CPU writes a multiply-reduce's products
    out whole before reducing them, T times the cache's bytes.
    """
    B, T, H, K = q_BxTxHxK.shape
    f32 = jnp.promote_types(q_BxTxHxK.dtype, jnp.float32)
    q_BxHxTxK = q_BxTxHxK.swapaxes(1, 2)
    if T == 1:
        products_BxHxTxKxS = q_BxHxTxK[..., None].astype(f32) * k_BxHxKxS[:, :, None].astype(f32)
        logits_BxHxTxS = products_BxHxTxKxS.sum(axis=3)
    else:
        logits_BxHxTxS = jnp.einsum(
            "bhtk,bhks->bhts", q_BxHxTxK, k_BxHxKxS, preferred_element_type=f32
        )
    logits_BxHxTxS = logits_BxHxTxS * jnp.asarray(K**-0.5, f32)
    logits_BxHxTxS = jnp.where(mask_Bx1xTxS, logits_BxHxTxS, -0.7 * jnp.finfo(f32).max)
    probs_BxHxTxS = jax.nn.softmax(logits_BxHxTxS, axis=-1).astype(v_BxHxSxK.dtype)
    if T == 1:
        products_BxHxTxSxK = probs_BxHxTxS[..., None].astype(f32) * v_BxHxSxK[:, :, None]
        y_BxHxTxK = products_BxHxTxSxK.sum(axis=3).astype(v_BxHxSxK.dtype)
    else:
        y_BxHxTxK = jnp.einsum("bhts,bhsk->bhtk", probs_BxHxTxS, v_BxHxSxK)
    return y_BxHxTxK.swapaxes(1, 2)


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
        queries_from: int = 0,
    ) -> tuple[jax.Array, LayerCache | None]:
        """The attention output of each query, [B, T, D]; without a cache, of the queries from
        column `queries_from` on alone ([B, T - queries_from, D]; every column is a key, and
        the mask's rows are those queries'), for a pass whose first columns are only keys."""
        B, T, _ = x_BxTxD.shape
        H, K = self.cfg.num_heads, self.cfg.head_dim
        qkv_BxTx3xHxK = self.qkv(x_BxTxD).reshape(B, T, 3, H, K)
        q_BxTxHxK, k_BxTxHxK, v_BxTxHxK = (qkv_BxTx3xHxK[:, :, i] for i in range(3))
        if cache is None:
            q_BxQxHxK = q_BxTxHxK[:, queries_from:]
            # implementation=None: XLA on CPU/TPU; no is_causal, the mask carries causality
            # (flax#5591).
            y_BxQxHxK = jax.nn.dot_product_attention(
                q_BxQxHxK, k_BxTxHxK, v_BxTxHxK, mask=mask_Bx1xTxS
            )
            return self.out(y_BxQxHxK.reshape(B, T - queries_from, H * K)), None
        if queries_from:
            raise ValueError("queries_from is for a pass without a cache")
        new = {"k": k_BxTxHxK.transpose(0, 2, 3, 1), "v": v_BxTxHxK.swapaxes(1, 2)}
        cache = {n: write_slots(cache[n], new[n], cache_index, SLOT_AXIS[n]) for n in ("k", "v")}
        k_BxHxKxS, v_BxHxSxK = (cache[n].astype(q_BxTxHxK.dtype) for n in ("k", "v"))
        y_BxTxHxK = cached_attention(q_BxTxHxK, k_BxHxKxS, v_BxHxSxK, mask_Bx1xTxS)
        return self.out(y_BxTxHxK.reshape(B, T, H * K)), cache


class Memory(NamedTuple):
    """What an encoder-decoder's decoder reads from the encoder (model/encoder_decoder.py).

    Computed once per prompt and kept in `KVCache.memory`, so decode steps never run the encoder.
    """

    # Each decoder layer's cross-attention keys and values, in the self-attention cache's layout
    # ({"k": [B, H, K, P], "v": [B, H, P, K]}); or, with ModelConfig.cross_kv_cache=False, () and
    # the layers project `states_BxPxD` at every call.
    layers: tuple[LayerCache, ...]
    states_BxPxD: jax.Array | None  # The encoder output; None once `layers` holds its K/V.
    key_positions_BxP: jax.Array  # The position of each source token; EMPTY elsewhere.
    # The prompts' token ids, for a decoder that copies the source (ModelConfig.source_copy_id).
    source_tokens_BxP: jax.Array | None = None


class CrossAttention(nnx.Module):
    """Multi-head attention from the decoder's states to the encoder output (every source token)."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs):
        self.cfg = cfg
        dense = dict(dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype, rngs=rngs)
        self.q = sharding.linear(cfg.d_model, cfg.d_model, ("embed", "heads"), **dense)
        self.kv = sharding.linear(cfg.d_model, 2 * cfg.d_model, ("embed", "heads"), **dense)
        self.out = sharding.linear(cfg.d_model, cfg.d_model, ("heads", "embed"), **dense)

    def keys_values(self, states_BxPxD: jax.Array) -> LayerCache:
        """This layer's keys and values of the encoder output, in the KV cache's layout."""
        B, P, _ = states_BxPxD.shape
        kv_BxPx2xHxK = self.kv(states_BxPxD).reshape(B, P, 2, self.cfg.num_heads, -1)
        return {
            "k": kv_BxPx2xHxK[:, :, 0].transpose(0, 2, 3, 1),
            "v": kv_BxPx2xHxK[:, :, 1].swapaxes(1, 2),
        }

    def __call__(self, x_BxTxD: jax.Array, kv: LayerCache, mask_Bx1xTxP: jax.Array) -> jax.Array:
        B, T, _ = x_BxTxD.shape
        H, K = self.cfg.num_heads, self.cfg.head_dim
        q_BxTxHxK = self.q(x_BxTxD).reshape(B, T, H, K)
        k_BxHxKxP, v_BxHxPxK = (kv[n].astype(q_BxTxHxK.dtype) for n in ("k", "v"))
        y_BxTxHxK = cached_attention(q_BxTxHxK, k_BxHxKxP, v_BxHxPxK, mask_Bx1xTxP)
        return self.out(y_BxTxHxK.reshape(B, T, H * K))
