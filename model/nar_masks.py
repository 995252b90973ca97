"""The training masks of the non-AR objectives (training/step.py): CMLM and glancing (GLAT).

Both hide target tokens (span [prefix_len, lengths) of each row) behind MASK; the model learns
to predict them from both sides. Shape legend: B rows, T positions.
"""

import jax
import jax.numpy as jnp


def cmlm_mask(
    inputs_BxT: jax.Array,
    prefix_lengths_B: jax.Array,
    lengths_B: jax.Array,
    rng: jax.Array,
    mask_id: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Masks k ~ U{1..m} of each row's m target tokens (span [prefix_len, lengths)).

    The k positions are drawn uniformly without replacement: every position in the span gets a
    uniform score, and those ranked below k are masked. A row with an empty span is left as is.

    Returns:
      (tokens_BxT with MASK at the chosen positions, targets_BxT = the original inputs,
       loss_mask_BxT float32: 1.0 at the masked positions).
    """
    B, T = inputs_BxT.shape
    k_rng, score_rng = jax.random.split(rng)
    in_span_BxT = (jnp.arange(T)[None, :] >= prefix_lengths_B[:, None]) & (
        jnp.arange(T)[None, :] < lengths_B[:, None]
    )
    span_B = jnp.maximum(lengths_B - prefix_lengths_B, 1)
    k_B = jax.random.randint(k_rng, (B,), 1, span_B + 1)
    # Positions outside the span score +inf, so the span's positions hold ranks 0..m-1.
    scores_BxT = jnp.where(in_span_BxT, jax.random.uniform(score_rng, (B, T)), jnp.inf)
    masked_BxT = in_span_BxT & (ranks(scores_BxT) < k_B[:, None])
    tokens_BxT = jnp.where(masked_BxT, mask_id, inputs_BxT).astype(inputs_BxT.dtype)
    return tokens_BxT, inputs_BxT, masked_BxT.astype(jnp.float32)


def glancing_mask(
    inputs_BxT: jax.Array,
    prefix_lengths_B: jax.Array,
    lengths_B: jax.Array,
    predicted_BxT: jax.Array,
    ratio: jax.Array,
    rng: jax.Array,
    mask_id: int,
) -> tuple[jax.Array, jax.Array]:
    """Glancing (GLAT, Qian et al. 2021): reveal floor(ratio * errors) reference tokens.

    `predicted_BxT` is a first pass's prediction of every target token (span [prefix_len,
    lengths)); each row reveals as many of its reference tokens, at uniform positions of the
    span, as `ratio` times the positions that pass got wrong, and masks the rest. The worse the
    first pass, the more the second sees; a row predicted perfectly reveals nothing and is
    learnt from MASKs alone, as the one-pass decoder will face it.

    Returns:
      (tokens_BxT: the inputs with MASK at the unrevealed target positions,
       loss_mask_BxT float32: 1.0 there).
    """
    B, T = inputs_BxT.shape
    cols_1xT = jnp.arange(T)[None, :]
    in_span_BxT = (cols_1xT >= prefix_lengths_B[:, None]) & (cols_1xT < lengths_B[:, None])
    errors_B = jnp.sum(in_span_BxT & (predicted_BxT != inputs_BxT), axis=1)
    revealed_B = jnp.floor(ratio * errors_B).astype(jnp.int32)
    scores_BxT = jnp.where(in_span_BxT, jax.random.uniform(rng, (B, T)), jnp.inf)
    masked_BxT = in_span_BxT & (ranks(scores_BxT) >= revealed_B[:, None])
    tokens_BxT = jnp.where(masked_BxT, mask_id, inputs_BxT).astype(inputs_BxT.dtype)
    return tokens_BxT, masked_BxT.astype(jnp.float32)


def ranks(scores_BxT: jax.Array) -> jax.Array:
    """Each entry's rank within its row, ascending (ties broken by position)."""
    return jnp.argsort(jnp.argsort(scores_BxT, axis=-1, stable=True), axis=-1)
