"""model/attention.py: the mask builder follows the causal, full, prefix and prefix_full rules;
cached attention on the cache's layout is jax.nn's attention."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from model import EMPTY, make_attention_mask
from model.attention import cached_attention


def test_mask_builder_matches_explicit_rules():
    q_1xT = jnp.arange(5)[None]
    k_1xS = jnp.array([[0, 1, 2, EMPTY, 4]])  # Slot 3 is padding.
    prefix_1 = jnp.array([2])
    causal = np.array(make_attention_mask("causal", q_1xT, k_1xS)[0, 0])
    full = np.array(make_attention_mask("full", q_1xT, k_1xS)[0, 0])
    prefix = np.array(make_attention_mask("prefix", q_1xT, k_1xS, prefix_1)[0, 0])
    prefix_full = np.array(make_attention_mask("prefix_full", q_1xT, k_1xS, prefix_1)[0, 0])
    real = np.array([1, 1, 1, 0, 1], bool)
    q, k = np.arange(5)[:, None], np.array([0, 1, 2, 99, 4])[None]
    np.testing.assert_array_equal(causal, (k <= q) & real)
    np.testing.assert_array_equal(full, np.broadcast_to(real, (5, 5)))
    np.testing.assert_array_equal(prefix, ((k <= q) | (k < 2)) & real)
    np.testing.assert_array_equal(prefix_full, ((q >= 2) | (k < 2)) & real)


@pytest.mark.parametrize("T", [1, 5])
def test_cached_attention_equals_dot_product_attention(T):
    # One query per row takes the multiply-reduce path, more take dots; both must be the
    # attention jax.nn computes, on the cache's layout (keys [B, H, K, S], values [B, H, S, K]),
    # including a row whose every key is masked (uniform weights, as in jax.nn).
    B, H, S, K = 3, 2, 7, 4
    rng = np.random.default_rng(0)
    q, k, v = (
        rng.normal(size=shape).astype(np.float32) for shape in [(B, T, H, K)] + [(B, S, H, K)] * 2
    )
    mask = rng.random((B, 1, T, S)) < 0.6
    mask[2] = False
    expected = jax.nn.dot_product_attention(q, k, v, mask=mask)
    got = cached_attention(q, k.transpose(0, 2, 3, 1), v.swapaxes(1, 2), mask)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
