"""model/attention.py: the mask builder follows the causal, full, prefix and prefix_full rules."""

import jax.numpy as jnp
import numpy as np

from model import EMPTY, make_attention_mask


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
