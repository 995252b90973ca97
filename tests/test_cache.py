"""model/cache.py: an empty cache holds no position; growing it keeps every written slot and adds
empty ones; a cache never shrinks. (That the cache reproduces the full forward pass is
test_decoder.py's test_cache_equals_full_forward_with_mixed_prompt_lengths.)"""

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_tiny_config

from model import EMPTY, grow_cache, init_cache, make_decoder
from model.attention import SLOT_AXIS


def test_an_empty_cache_has_no_positions_and_refuses_no_slots():
    cfg = make_tiny_config()
    cache = init_cache(cfg, 2)
    assert cache.key_positions_BxS.shape == (2, cfg.max_len) and int(cache.index) == 0
    assert bool(jnp.all(cache.key_positions_BxS == EMPTY)) and cache.memory is None
    assert len(cache.layers) == cfg.num_layers
    with pytest.raises(ValueError, match="cache_len must be >= 1"):
        init_cache(cfg, 2, 0)


@pytest.mark.slow
def test_growing_keeps_every_written_slot_and_adds_empty_ones():
    cfg = make_tiny_config()
    model = make_decoder(cfg)
    tokens_BxT = jnp.arange(10, dtype=jnp.int32).reshape(2, 5) % cfg.vocab_size
    _, cache = model(tokens_BxT, cache=init_cache(cfg, 2, 5))
    grown = grow_cache(cache, 9)
    assert grown.key_positions_BxS.shape == (2, 9) and int(grown.index) == int(cache.index)
    np.testing.assert_array_equal(grown.key_positions_BxS[:, :5], cache.key_positions_BxS)
    assert bool(jnp.all(grown.key_positions_BxS[:, 5:] == EMPTY))
    for old, new in zip(cache.layers, grown.layers, strict=True):
        for name, kv in old.items():
            axis = SLOT_AXIS[name]
            kept = np.take(np.asarray(new[name]), np.arange(5), axis=axis)
            added = np.take(np.asarray(new[name]), np.arange(5, 9), axis=axis)
            np.testing.assert_array_equal(kept, np.asarray(kv))
            assert not added.any()
    with pytest.raises(ValueError, match="Cannot shrink a cache of 9 slots to 4"):
        grow_cache(grown, 4)
