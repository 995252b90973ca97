"""model/block.py: a Block's parameter counts are its module's own (with and without cross
attention), and dropout is the identity without a key and inverted dropout with one."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_tiny_config
from flax import nnx

from model.block import Block, dropout


def _block(cfg, cross_attention: bool = False) -> Block:
    # As Decoder makes its blocks: parameters are named, and placed on a mesh only later.
    with nnx.use_eager_sharding(False):
        return Block(cfg, rngs=nnx.Rngs(0), cross_attention=cross_attention)


def _count(module, kernels_only: bool = False) -> int:
    _, params = nnx.split(module, nnx.Param)
    leaves = jax.tree_util.tree_leaves_with_path(params)
    return sum(
        leaf.size
        for path, leaf in leaves
        if not kernels_only or "kernel" in jax.tree_util.keystr(path)
    )


@pytest.mark.parametrize("cross_attention", [False, True])
def test_the_parameter_counts_are_the_modules_own(cross_attention):
    cfg = make_tiny_config()
    block = _block(cfg, cross_attention)
    assert Block.num_params(cfg, cross_attention) == _count(block)
    assert Block.matmul_params(cfg, cross_attention) == _count(block, kernels_only=True)


@pytest.mark.slow
def test_a_block_keeps_the_shape_and_is_deterministic_without_dropout():
    cfg = make_tiny_config(dropout_rate=0.5)
    block = _block(cfg)
    x_BxTxD = jax.random.normal(jax.random.key(1), (2, 5, cfg.d_model))
    mask_Bx1xTxS = jnp.tril(jnp.ones((5, 5), bool))[None, None].repeat(2, axis=0)
    y, cache = block(x_BxTxD, mask_Bx1xTxS, None, None, None)
    again, _ = block(x_BxTxD, mask_Bx1xTxS, None, None, None)
    assert y.shape == x_BxTxD.shape and cache is None
    np.testing.assert_array_equal(y, again)
    dropped, _ = block(x_BxTxD, mask_Bx1xTxS, None, None, jax.random.key(2))
    assert not np.allclose(dropped, y)


def test_dropout_is_inverted_and_the_identity_without_a_key_or_rate():
    x = jnp.ones((1000,), jnp.bfloat16)
    assert dropout(x, 0.5, None) is x and dropout(x, 0.0, jax.random.key(0)) is x
    y = np.asarray(dropout(x, 0.25, jax.random.key(0)), np.float32)
    assert dropout(x, 0.25, jax.random.key(0)).dtype == jnp.bfloat16
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-2)  # Scaled, so the mean holds.
    assert 0.7 < kept.mean() < 0.8
