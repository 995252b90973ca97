"""The pieces of exact parallel decoding (model/speculative.py): draw, verify, forget.

Verification (Leviathan et al. 2023; Chen et al. 2023) keeps the longest run of drafts the target
accepts, then adds one token of the target's own:
  - greedy: drafts equal to the target's argmax are accepted; then the argmax;
  - sampling: draft d is accepted with probability min(1, p(d) / q(d)); after a rejection the
    token comes from max(p - q, 0), renormalised; after G acceptances, the bonus token from p.
Greedy is the same rule with p and q one-hot (`distribution`), so one code path serves both.
Shape legend: B rows, T positions, G draft tokens, V vocab, S cache slots.
"""

import jax
import jax.numpy as jnp

from model.cache import KVCache
from model.masks import EMPTY
from model.sampling import SamplingParams, filter_top_k_top_p


def distribution(logits_BxTxV: jax.Array, sampling: SamplingParams) -> jax.Array:
    """The distribution a token is drawn from: one-hot at the argmax when temperature is 0,
    else softmax of the temperature-scaled logits after the top-k / top-p filters."""
    B, T, V = logits_BxTxV.shape

    def greedy(logits_BxTxV):
        return jax.nn.one_hot(jnp.argmax(logits_BxTxV, axis=-1), V, dtype=jnp.float32)

    def sample(logits_BxTxV):
        scaled_NxV = (logits_BxTxV / sampling.temperature).reshape(B * T, V)
        scaled_NxV = jax.lax.cond(
            (sampling.top_k > 0) | (sampling.top_p < 1),
            filter_top_k_top_p,
            lambda x, k, p: x,
            scaled_NxV,
            sampling.top_k,
            sampling.top_p,
        )
        return jax.nn.softmax(scaled_NxV, axis=-1).reshape(B, T, V)

    return jax.lax.cond(sampling.temperature > 0, sample, greedy, logits_BxTxV)


def is_greedy(sampling: SamplingParams) -> jax.Array:
    """Whether `distribution` gives one-hot rows (traced: no recompiles either way)."""
    return sampling.temperature <= 0


def draw(rng: jax.Array, probs_BxTxV: jax.Array, greedy: jax.Array | bool = False) -> jax.Array:
    """One token per row and position from `probs`. Greedy (one-hot rows) takes the argmax
    without drawing random bits: on CPU each draw is a small rolled loop (threefry)."""
    return jax.lax.cond(
        greedy,
        lambda: jnp.argmax(probs_BxTxV, axis=-1).astype(jnp.int32),
        lambda: jax.random.categorical(rng, jnp.log(probs_BxTxV), axis=-1).astype(jnp.int32),
    )


def verify(
    p_BxG1xV: jax.Array,
    q_BxGxV: jax.Array,
    drafts_BxG: jax.Array,
    rngs_2: jax.Array,
    greedy: jax.Array | bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Speculative verification of G drafts per row against the target's G + 1 distributions.

    rngs_2: two keys, for the acceptance tests and for the next token. greedy: p and q are
    one-hot, so a draft is kept iff p(draft) > 0 and no random bits are drawn.
    Returns (accepted_B, next_B): the number of leading drafts kept, and the token that follows
    them: drawn from max(p - q, 0) at the first rejection, or from p after G acceptances.
    """
    B, G = drafts_BxG.shape
    accept_rng, next_rng = rngs_2[0], rngs_2[1]
    p_BxG = jnp.take_along_axis(p_BxG1xV[:, :G], drafts_BxG[..., None], axis=-1)[..., 0]
    q_BxG = jnp.take_along_axis(q_BxGxV, drafts_BxG[..., None], axis=-1)[..., 0]
    # u < p / q, written without the division: P(accept) = min(1, p / q).
    u_BxG = jax.lax.cond(
        greedy,
        lambda: jnp.zeros((B, G), p_BxG.dtype),
        lambda: jax.random.uniform(accept_rng, (B, G), p_BxG.dtype),
    )
    kept_BxG = u_BxG * q_BxG < p_BxG
    accepted_B = jnp.sum(jnp.cumprod(kept_BxG, axis=1), axis=1).astype(jnp.int32)
    q_BxG1xV = jnp.pad(q_BxGxV, ((0, 0), (0, 1), (0, 0)))  # No draft after the last: p itself.
    at_B11 = accepted_B[:, None, None]
    p_Bx1xV = jnp.take_along_axis(p_BxG1xV, at_B11, axis=1)
    residual_Bx1xV = jnp.maximum(p_Bx1xV - jnp.take_along_axis(q_BxG1xV, at_B11, axis=1), 0.0)
    # A rejection implies p != q there, so the residual has mass; the fallback guards rounding.
    has_mass_Bx1x1 = residual_Bx1xV.sum(-1, keepdims=True) > 0
    next_B = draw(next_rng, jnp.where(has_mass_Bx1x1, residual_Bx1xV, p_Bx1xV), greedy)[:, 0]
    return accepted_B, next_B


def forget(cache: KVCache, lengths_B: jax.Array) -> KVCache:
    """The cache without positions >= lengths_B - 1: each row's last committed token is fed in
    the next round, and what lies beyond it were drafts."""
    keep_BxS = cache.key_positions_BxS < (lengths_B - 1)[:, None]
    return cache._replace(key_positions_BxS=jnp.where(keep_BxS, cache.key_positions_BxS, EMPTY))


def call_at(model, tokens_BxT, positions_BxT, prefix_lengths_B, cache: KVCache):
    """`model` on tokens at the given positions, written at the slots of those positions.

    Draft tokens may lie past the last position a row can keep, even past max_len; their
    position embedding is clamped (they are never kept, and causal queries never see them).
    """
    x_BxTxD = model.embed(tokens_BxT, jnp.minimum(positions_BxT, model.cfg.max_len - 1))
    return model.from_embeddings(
        x_BxTxD,
        positions_BxT=positions_BxT,
        prefix_lengths_B=prefix_lengths_B,
        cache=cache._replace(index=positions_BxT[:, 0]),
    )
