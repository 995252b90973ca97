"""The functional KV cache: a slot per token, each slot holding its position (EMPTY for none).

One position-based mask rule (model/attention.py) serves the forward pass, the prefill and every
cache; a row's cache is exact for causal attention only (docs/model.md).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from model.attention import SLOT_AXIS, LayerCache, Memory, init_layer_cache
from model.config import ModelConfig
from model.masks import EMPTY


class KVCache(NamedTuple):
    """A functional KV cache. Each call appends its T tokens at slots [index, index + T)."""

    layers: tuple[LayerCache, ...]
    key_positions_BxS: jax.Array  # Position of the token in each slot; EMPTY if none (or pad).
    # The next free slot: an int32 scalar shared by the whole batch, or int32[B], one per row
    # (model/speculative.py, where rows accept different numbers of tokens).
    index: jax.Array
    # An encoder-decoder's encoder output (cross-attention K/V), written by the prefill; None
    # for a decoder, and before the prefill.
    memory: Memory | None = None


def init_cache(
    cfg: ModelConfig, batch_size: int, cache_len: int | None = None, dtype=None
) -> KVCache:
    """An empty KV cache of `cache_len` slots (default max_len). Writing past the end is a bug.

    max_len bounds positions, not slots: speculative decoding keeps a few slots beyond the last
    position it will accept, for draft tokens that are verified and then dropped.
    """
    cache_len = cfg.max_len if cache_len is None else cache_len
    if cache_len < 1:
        raise ValueError(f"cache_len must be >= 1, got {cache_len}")
    layers = tuple(
        init_layer_cache(batch_size, cache_len, cfg, dtype) for _ in range(cfg.num_layers)
    )
    key_positions_BxS = jnp.full((batch_size, cache_len), EMPTY, jnp.int32)
    return KVCache(layers, key_positions_BxS, jnp.int32(0))


def grow_cache(cache: KVCache, cache_len: int) -> KVCache:
    """The same cache with `cache_len` slots: new slots are empty (EMPTY positions, zero K/V).

    Attention reads every slot at every step, so a cache that grows with the sequence reads
    fewer bytes than one allocated at full length up front; `generate` grows its cache in steps.
    """
    slots = cache.key_positions_BxS.shape[1]
    grow = cache_len - slots
    if grow < 0:
        raise ValueError(f"Cannot shrink a cache of {slots} slots to {cache_len}")

    def pad(kv, name):
        widths = [(0, 0)] * kv.ndim
        widths[SLOT_AXIS[name]] = (0, grow)
        return jnp.pad(kv, widths)

    layers = tuple({name: pad(kv, name) for name, kv in kv.items()} for kv in cache.layers)
    key_positions_BxS = jnp.pad(cache.key_positions_BxS, ((0, 0), (0, grow)), constant_values=EMPTY)
    return cache._replace(layers=layers, key_positions_BxS=key_positions_BxS)
