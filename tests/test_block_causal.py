"""The block_causal mask: it contains causal (block 1) and full (one block), bitwise."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from model import ModelConfig, make_decoder
from model.attention import make_attention_mask
from model.masks import EMPTY


def _positions(lengths, T):
    positions = np.broadcast_to(np.arange(T), (len(lengths), T))
    keys = np.where(positions < np.asarray(lengths)[:, None], positions, EMPTY)
    return jnp.asarray(positions, jnp.int32), jnp.asarray(keys, jnp.int32)


@pytest.mark.parametrize("with_prompt", [False, True])
def test_block_size_1_is_causal_and_one_block_is_full(with_prompt):
    T = 12
    positions, keys = _positions([12, 9, 5], T)
    prefix = jnp.asarray([3, 1, 4], jnp.int32) if with_prompt else None
    small, large = ("prefix", "prefix_full") if with_prompt else ("causal", "full")
    block_1 = make_attention_mask("block_causal", positions, keys, prefix, block_size=1)
    one_block = make_attention_mask("block_causal", positions, keys, prefix, block_size=T)
    np.testing.assert_array_equal(block_1, make_attention_mask(small, positions, keys, prefix))
    np.testing.assert_array_equal(one_block, make_attention_mask(large, positions, keys, prefix))


def test_blocks_see_their_own_block_and_earlier_ones():
    positions, keys = _positions([8], 8)
    mask = np.asarray(make_attention_mask("block_causal", positions, keys, block_size=3))[0, 0]
    block = np.arange(8) // 3
    np.testing.assert_array_equal(mask, block[None, :] <= block[:, None])


def test_noised_copy_sees_its_block_and_the_clean_blocks_before_it():
    """Block diffusion's training pass: [clean row, noised row], the two sharing positions."""
    T, size = 6, 2
    positions = jnp.asarray(np.tile(np.arange(T), 2)[None], jnp.int32)
    noisy = jnp.asarray(np.repeat([False, True], T)[None])
    mask = make_attention_mask(
        "block_causal", positions, positions, None, block_size=size,
        noisy_queries_BxT=noisy, noisy_keys_BxS=noisy,
    )[0, 0]  # fmt: skip
    block = np.arange(T) // size
    clean_to_clean = block[None, :] <= block[:, None]
    np.testing.assert_array_equal(mask[:T, :T], clean_to_clean)
    np.testing.assert_array_equal(mask[:T, T:], np.zeros((T, T), bool))
    np.testing.assert_array_equal(mask[T:, :T], block[None, :] < block[:, None])
    np.testing.assert_array_equal(mask[T:, T:], block[None, :] == block[:, None])


@pytest.mark.slow
def test_block_causal_model_with_block_1_equals_the_causal_model():
    kw = dict(vocab_size=16, d_model=32, num_heads=2, num_layers=2, d_ff=64, max_len=16)
    causal = make_decoder(ModelConfig(attention_mask_kind="causal", **kw), seed=0)
    block = make_decoder(ModelConfig(attention_mask_kind="block_causal", block_size=1, **kw), 0)
    tokens = jax.random.randint(jax.random.key(1), (2, 10), 0, 16)
    np.testing.assert_array_equal(causal(tokens)[0], block(tokens)[0])


@pytest.mark.parametrize("bad", [0, -2, 1.5])
def test_block_size_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="block_size must be a positive int"):
        ModelConfig(attention_mask_kind="block_causal", block_size=bad)
