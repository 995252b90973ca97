"""The pre-LN residual block that the decoder's stack (model/decoder.py) and the
encoder-decoder's encoder (model/encoder_decoder.py) are built of, and the dropout they share.

Shape legend: B batch, T queries, S keys, P source keys, D model width, F MLP width.
"""

import jax
import jax.numpy as jnp
from flax import nnx

from model import sharding
from model.attention import CrossAttention, SelfAttention
from model.config import ModelConfig


def dropout(x: jax.Array, rate: float, rng: jax.Array | None) -> jax.Array:
    """Inverted dropout of `x` at `rate`; the identity without an rng or at rate 0."""
    if rng is None or rate == 0.0:
        return x
    keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0).astype(x.dtype)


class Block(nnx.Module):
    """Pre-LN residual block: x + attn(ln(x)), [x + cross(ln(x), memory),] then x + mlp(ln(x)).

    With `cross_attention` (an encoder-decoder's decoder), `cross` is a (keys and values, mask
    [B, 1, T, P]) pair: this layer's K/V of the encoder output, and which source keys exist.
    """

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs, cross_attention: bool = False):
        self.cfg = cfg
        kw = dict(dtype=cfg.compute_dtype, param_dtype=cfg.weight_dtype, rngs=rngs)
        self.ln_attn = sharding.layer_norm(cfg.d_model, **kw)
        self.attn = SelfAttention(cfg, rngs=rngs)
        if cross_attention:
            self.ln_cross = sharding.layer_norm(cfg.d_model, **kw)
            self.cross = CrossAttention(cfg, rngs=rngs)
        self.ln_mlp = sharding.layer_norm(cfg.d_model, **kw)
        self.mlp_in = sharding.linear(cfg.d_model, cfg.d_ff, ("embed", "mlp"), **kw)
        self.mlp_out = sharding.linear(cfg.d_ff, cfg.d_model, ("mlp", "embed"), **kw)

    def __call__(
        self, x_BxTxD, mask_Bx1xTxS, cache, cache_index, dropout_rng, cross=None, queries_from=0
    ):
        """(the block's output, its cache); with `queries_from`, the output of the columns from
        it on alone: the columns before are keys and values only (the mask and `cross` are of
        the outputs' rows)."""
        rngs = jax.random.split(dropout_rng, 3) if dropout_rng is not None else (None,) * 3
        y_BxTxD, cache = self.attn(
            self.ln_attn(x_BxTxD), mask_Bx1xTxS, cache, cache_index, queries_from
        )
        x_BxTxD = x_BxTxD[:, queries_from:] + dropout(y_BxTxD, self.cfg.dropout_rate, rngs[0])
        if cross is not None:
            y_BxTxD = self.cross(self.ln_cross(x_BxTxD), *cross)
            x_BxTxD = x_BxTxD + dropout(y_BxTxD, self.cfg.dropout_rate, rngs[2])
        h_BxTxF = jax.nn.gelu(self.mlp_in(self.ln_mlp(x_BxTxD)))
        x_BxTxD = x_BxTxD + dropout(self.mlp_out(h_BxTxF), self.cfg.dropout_rate, rngs[1])
        return x_BxTxD, cache

    @staticmethod
    def num_params(cfg: ModelConfig, cross_attention: bool = False) -> int:
        """Parameters of one block: attention (4 D x D projections and biases), MLP, LayerNorms."""
        d, f = cfg.d_model, cfg.d_ff
        attention = 4 * d * d + 4 * d
        params = attention + (2 * d * f + f + d) + 2 * (2 * d)
        return params + (attention + 2 * d if cross_attention else 0)

    @staticmethod
    def matmul_params(cfg: ModelConfig, cross_attention: bool = False) -> int:
        """The weights of one block's matmuls (its kernels, not its biases or norms)."""
        d = cfg.d_model
        return 4 * d * d * (2 if cross_attention else 1) + 2 * d * cfg.d_ff
