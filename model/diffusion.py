"""Masked diffusion's forward process and its bound on the likelihood, shared by training
(`train.objective="diffusion"`, training/step.py) and the likelihood evaluator
(evaluation/likelihood.py).

Continuous time, absorbing state (MDLM, Sahoo et al. 2024; MD4, Shi et al. 2024). At time t in
(0, 1] each target token (span [prefix_lengths, lengths) of a row, as CMLM's) is replaced by
MASK with probability 1 - alpha_t, independently; the schedule is linear, alpha_t = 1 - t. The
model reads the noised row and predicts, at each target position, the clean token there; MASK
is never a prediction (its logit is left out of the softmax). The negative ELBO of a row is

    E_t E_{x_t} [ w(t) sum over masked i of -log p(x_i | x_t) ],  w(t) = -alpha'_t / (1 - alpha_t),

which is 1/t for the linear schedule, and bounds -log p(targets | prompt, their number) from
above. Where a row has m target tokens, a masking pattern of k of them gets, once t is
integrated out, the weight (k - 1)! (m - k)! / m! (tests/test_diffusion_objective.py checks
the Monte Carlo estimate against that enumeration).

Block diffusion (BD3-LM, Arriola et al. 2025) is the same under `block_causal`: the targets are
cut into blocks of `block_size` (model/attention.py `block_ids`), and the bound is the sum over
blocks of each block's ELBO given the clean blocks before it, each block with its own t. One
model call computes every block: the row is fed twice, [clean row, noised row], both copies at
the same positions, with `noisy_BxT` True on the second (`make_attention_mask`). A noised token
sees the noised tokens of its own block and the clean tokens of earlier blocks and the prompt.
The noised copy's prompt and padding are not keys at all (position EMPTY), so nothing reads
them. With `full` or `prefix_full` the targets are one block, and one noised pass is MDLM.

Times are drawn low-discrepancy: n times t_i = 1 - (1 - eps) ((u + i / n) mod 1), u ~ U[0, 1),
each uniform on (eps, 1] and together spread over it (MD4's and MDLM's antithetic draw).

Two draws of the masks estimate the same bound:
- per token (`counts=False`, training): each token is masked with probability t, weight 1/t.
  Near t = 0 a rare masked token carries a huge weight, so the estimate's variance has no
  bound; eps > 0 (train.diffusion_eps) keeps t away from 0, at the cost of a bias of order eps.
- by count (`counts=True`, the held-out loss and the likelihood evaluator): exactly
  k = ceil(m t) of a block's m tokens are masked, uniformly, with weight m / k. Integrating t out
  of the per-token draw gives this one: a pattern of k tokens has weight 1 / (k C(m, k)) either
  way. k is uniform on 1..m, the weights are at most m, and eps = 0 costs nothing.

Shape legend: B rows, T positions, K blocks per row (1 unless block_causal), N time samples,
V vocab.
"""

import math

import jax
import jax.numpy as jnp

from model.block import Block
from model.config import ModelConfig
from model.decoder import Decoder, default_positions
from model.masks import EMPTY, block_ids
from model.nar_masks import ranks


def alpha(t: jax.Array) -> jax.Array:
    """The linear schedule: the probability that a token is still clean at time t."""
    return 1.0 - t


def elbo_weight(t: jax.Array) -> jax.Array:
    """-alpha'_t / (1 - alpha_t): the weight of a masked token's cross-entropy at time t."""
    return 1.0 / t


def stratified_times(
    rng: jax.Array, num: int, shape: tuple[int, ...] = (), eps: jax.Array | float = 0.0
) -> jax.Array:
    """[num, *shape] times in (eps, 1]: for each element of `shape`, `num` times stratified
    over the interval, t_i = 1 - (1 - eps) ((u + i / num) mod 1) with one u ~ U[0, 1)."""
    u_1xS = jax.random.uniform(rng, (1, *shape))
    offsets_NxS = jnp.arange(num, dtype=jnp.float32).reshape((num,) + (1,) * len(shape)) / num
    return 1.0 - (1.0 - eps) * jnp.mod(u_1xS + offsets_NxS, 1.0)


def whole_sequence(
    inputs_BxT: jax.Array,
    targets_BxT: jax.Array,
    lengths_B: jax.Array,
    eos_id: int,
    eos_in_span: bool = False,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The tokens AR scores, as diffusion reads them: (each row whole [B, T + 1], its first
    input then every target; where its target span ends; whether it ends with EOS).

    AR scores a row's targets [prefix_len - 1, length). A row ending with EOS is its prompt, its
    tokens and the EOS: the span stops before the EOS, which the length head scores (the
    row's length), or, `eos_in_span` (a block model, `scores_eos_as_token`), takes the EOS as
    its last token. A row without EOS (a window cut from a longer text) has no end to score,
    and its span runs to its last target token, which `inputs` alone lacks.
    """
    tokens_BxS = jnp.concatenate([inputs_BxT[:, :1], targets_BxT], axis=1)
    with_eos_B = ends_with_eos(targets_BxT, lengths_B, eos_id)
    past_last_B = (~with_eos_B) | eos_in_span
    return tokens_BxS, lengths_B + past_last_B.astype(lengths_B.dtype), with_eos_B


def scores_eos_as_token(cfg: ModelConfig) -> bool:
    """Whether a diffusion model learns its EOS as a token of its span rather than from a length
    head: a block model (block_causal), as BD3-LM, which writes blocks until one holds EOS, so
    that no length is needed before its first block. A one-block model (MDLM) samples a canvas
    whose length is known first: its length head scores the end."""
    return block_size_of(cfg) is not None


def ends_with_eos(targets_BxT: jax.Array, lengths_B: jax.Array, eos_id: int) -> jax.Array:
    """Bool [B]: whether each row's last target is EOS (not a window cut from a longer text)."""
    last_B = jnp.take_along_axis(targets_BxT, jnp.maximum(lengths_B - 1, 0)[:, None], axis=1)
    return (last_B[:, 0] == eos_id) & (lengths_B > 0)


def block_size_of(cfg: ModelConfig) -> int | None:
    """Tokens per diffusion block: `block_size` under block_causal; None (one block) otherwise."""
    return cfg.mask.block_size(cfg)


def num_blocks(cfg: ModelConfig, T: int) -> int:
    """K: the most blocks a row of T positions holds (each block draws its own t)."""
    block_size = block_size_of(cfg)
    return 1 if block_size is None else math.ceil(T / block_size)


def target_span(prefix_lengths_B: jax.Array, lengths_B: jax.Array, T: int) -> jax.Array:
    """Boolean [B, T]: the target positions [prefix_lengths, lengths) that diffusion noises."""
    cols_1xT = jnp.arange(T)[None, :]
    return (cols_1xT >= prefix_lengths_B[:, None]) & (cols_1xT < lengths_B[:, None])


def position_blocks(cfg: ModelConfig, prefix_lengths_B: jax.Array, T: int) -> jax.Array:
    """Int [B, T]: the block of each target position, 0 .. K - 1 (the prompt's count as 0)."""
    block_size = block_size_of(cfg)
    if block_size is None:
        return jnp.zeros((prefix_lengths_B.shape[0], T), jnp.int32)
    positions_BxT = jnp.broadcast_to(jnp.arange(T, dtype=jnp.int32), (len(prefix_lengths_B), T))
    blocks_BxT = block_ids(positions_BxT, prefix_lengths_B, block_size)
    return jnp.clip(blocks_BxT, 0, num_blocks(cfg, T) - 1)


def noise(
    inputs_BxT: jax.Array, span_BxT: jax.Array, t_BxT: jax.Array, rng: jax.Array, mask_id: int
) -> tuple[jax.Array, jax.Array]:
    """(the noised tokens, where they were masked): each span token becomes `mask_id` with
    probability 1 - alpha_t of its own time t."""
    masked_BxT = span_BxT & (jax.random.uniform(rng, inputs_BxT.shape) < 1.0 - alpha(t_BxT))
    return jnp.where(masked_BxT, mask_id, inputs_BxT).astype(inputs_BxT.dtype), masked_BxT


def count_masks(
    span_BxT: jax.Array, blocks_BxT: jax.Array, t_BxK: jax.Array, rng: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """(where to mask [B, T], each position's weight m / k [B, T]): in each block of m span
    tokens, k = ceil(m t) of them, uniformly (module docstring)."""
    K = t_BxK.shape[1]
    block_1x1xK = jnp.arange(K)[None, None, :]
    in_block_BxTxK = span_BxT[:, :, None] & (blocks_BxT[:, :, None] == block_1x1xK)
    m_BxK = in_block_BxTxK.sum(axis=1).astype(jnp.float32)
    k_BxK = jnp.clip(jnp.ceil(m_BxK * t_BxK), 1.0, jnp.maximum(m_BxK, 1.0))
    # Scores ordered by block, then uniformly inside it; a block's first rank is the number of
    # span tokens before it (blocks are contiguous runs of the span).
    scores_BxT = jnp.where(span_BxT, blocks_BxT + jax.random.uniform(rng, span_BxT.shape), jnp.inf)
    first_BxT = jnp.take_along_axis(jnp.cumsum(m_BxK, axis=1) - m_BxK, blocks_BxT, axis=1)
    k_BxT = jnp.take_along_axis(k_BxK, blocks_BxT, axis=1)
    masked_BxT = span_BxT & (ranks(scores_BxT) - first_BxT < k_BxT)
    return masked_BxT, jnp.take_along_axis(m_BxK / k_BxK, blocks_BxT, axis=1)


def denoiser_logits(
    model: Decoder,
    noised_BxT: jax.Array,
    inputs_BxT: jax.Array,
    prefix_lengths_B: jax.Array,
    lengths_B: jax.Array,
    dropout_rng: jax.Array | None = None,
) -> jax.Array:
    """Logits [B, T, V] of the noised row, in one model call.

    Under block_causal the call reads [clean row, noised row] (module docstring) and the
    noised copy's logits are returned; otherwise it reads the noised row alone.
    """
    if not model.cfg.mask.takes_noisy:
        logits_BxTxV, _ = model(
            noised_BxT,
            lengths_B=lengths_B,
            prefix_lengths_B=prefix_lengths_B,
            dropout_rng=dropout_rng,
        )
        return logits_BxTxV
    B, T = inputs_BxT.shape
    positions_BxT = default_positions(inputs_BxT, None)
    real_BxT = jnp.arange(T)[None, :] < lengths_B[:, None]
    span_BxT = target_span(prefix_lengths_B, lengths_B, T)
    # Embedded at true positions; keys that must not exist get position EMPTY after that.
    x_Bx2TxD = model.embed(
        jnp.concatenate([inputs_BxT, noised_BxT], axis=1),
        jnp.concatenate([positions_BxT, positions_BxT], axis=1),
    )
    key_positions_Bx2T = jnp.concatenate(
        [jnp.where(real_BxT, positions_BxT, EMPTY), jnp.where(span_BxT, positions_BxT, EMPTY)],
        axis=1,
    )
    noisy_Bx2T = jnp.concatenate([jnp.zeros((B, T), bool), jnp.ones((B, T), bool)], axis=1)
    # The clean copy's outputs are never read: it is keys and values to the noised copy, so
    # the last layer and the LM head run over the noised copy alone (`logits_from`).
    logits_BxTxV, _ = model.from_embeddings(
        x_Bx2TxD,
        positions_BxT=key_positions_Bx2T,
        prefix_lengths_B=prefix_lengths_B,
        dropout_rng=dropout_rng,
        noisy_BxT=noisy_Bx2T,
        logits_from=T,
    )
    return logits_BxTxV


def train_flops(arch, cfg: ModelConfig, batch: dict) -> float:
    """Forward + backward FLOPs of a diffusion train step on `batch` (shapes only): each row
    read whole (T + 1 positions, `whole_sequence`), under block_causal twice, [clean, noised],
    with attention over both copies, less what the clean copy's last layer skips (all but its
    keys and values) and its LM head. The length head's pass over the prompts is left out (one
    column a row on plain text)."""
    B, T = batch["inputs"].shape
    S = T + 1
    if not cfg.mask.takes_noisy:
        return arch.train_flops(cfg, {**batch, "inputs": jax.ShapeDtypeStruct((B, S), jnp.int32)})
    both = arch.train_flops(cfg, {"inputs": jax.ShapeDtypeStruct((B, 2 * S), jnp.int32)})
    d = cfg.d_model
    skipped_matmuls = Block.matmul_params(cfg) - 2 * d * d + d * cfg.vocab_size
    skipped_per_token = 6.0 * skipped_matmuls + 12.0 * 2 * S * d
    return both - B * S * skipped_per_token


def token_nll(logits_BxTxV: jax.Array, targets_BxT: jax.Array, mask_id: int) -> jax.Array:
    """-log p(target) [B, T] under the softmax without MASK (never a clean token)."""
    logits_BxTxV = logits_BxTxV.astype(jnp.float32).at[..., mask_id].set(-jnp.inf)
    target_BxT = jnp.take_along_axis(logits_BxTxV, targets_BxT[..., None], axis=-1)[..., 0]
    return jax.nn.logsumexp(logits_BxTxV, axis=-1) - target_BxT


def elbo_terms(
    model: Decoder,
    inputs_BxT: jax.Array,
    prefix_lengths_B: jax.Array,
    lengths_B: jax.Array,
    t_BxK: jax.Array,
    rng: jax.Array,
    *,
    mask_id: int,
    counts: bool = False,
    dropout_rng: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """(one Monte Carlo draw of each row's negative ELBO in nats [B], its target tokens [B]).

    Block k of a row is noised at time t_BxK[:, k], per token or by count (module docstring);
    each masked token adds its weight times its cross-entropy. The draw's expectation over
    t ~ U(0, 1] and the masks is the bound.
    """
    T = inputs_BxT.shape[1]
    span_BxT = target_span(prefix_lengths_B, lengths_B, T)
    blocks_BxT = position_blocks(model.cfg, prefix_lengths_B, T)
    if counts:
        masked_BxT, weight_BxT = count_masks(span_BxT, blocks_BxT, t_BxK, rng)
    else:
        t_BxT = jnp.take_along_axis(t_BxK, blocks_BxT, axis=1)
        _, masked_BxT = noise(inputs_BxT, span_BxT, t_BxT, rng, mask_id)
        weight_BxT = elbo_weight(t_BxT)
    noised_BxT = jnp.where(masked_BxT, mask_id, inputs_BxT).astype(inputs_BxT.dtype)
    logits_BxTxV = denoiser_logits(
        model, noised_BxT, inputs_BxT, prefix_lengths_B, lengths_B, dropout_rng
    )
    nll_BxT = token_nll(logits_BxTxV, inputs_BxT, mask_id)
    weighted_BxT = jnp.where(masked_BxT, weight_BxT * nll_BxT, 0.0)
    return weighted_BxT.sum(axis=1), span_BxT.sum(axis=1).astype(jnp.float32)


def negative_elbo(
    model: Decoder,
    inputs_BxT: jax.Array,
    prefix_lengths_B: jax.Array,
    lengths_B: jax.Array,
    rng: jax.Array,
    *,
    mask_id: int,
    eps: jax.Array | float = 0.0,
    counts: bool = False,
    dropout_rng: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """(the batch's negative ELBO per target token, the number of target tokens): one draw of t
    per (row, block), stratified across the batch; masks per token (the training loss) or by
    count (`counts`, the held-out loss)."""
    B, T = inputs_BxT.shape
    K = num_blocks(model.cfg, T)
    time_rng, noise_rng = jax.random.split(rng)
    t_BxK = stratified_times(time_rng, B * K, eps=eps).reshape(B, K)
    nats_B, tokens_B = elbo_terms(
        model, inputs_BxT, prefix_lengths_B, lengths_B, t_BxK, noise_rng,
        mask_id=mask_id, counts=counts, dropout_rng=dropout_rng,
    )  # fmt: skip
    count = tokens_B.sum()
    return nats_B.sum() / jnp.maximum(count, 1.0), count


def elbo_samples(
    model: Decoder,
    inputs_BxT: jax.Array,
    prefix_lengths_B: jax.Array,
    lengths_B: jax.Array,
    rng: jax.Array,
    *,
    num_samples: int,
    mask_id: int,
    counts: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """(N draws of each row's negative ELBO in nats [N, B], its target tokens [B]).

    Each (row, block) gets N times stratified over (0, 1], masks by count unless `counts` is
    False, so the mean over the draws is an unbiased estimate of the bound; one model call per
    draw (lax.map, so memory stays at one call's), without dropout. Jit it with `num_samples`,
    `mask_id` and `counts` static.
    """
    B, T = inputs_BxT.shape
    time_rng, noise_rng = jax.random.split(rng)
    t_NxBxK = stratified_times(time_rng, num_samples, (B, num_blocks(model.cfg, T)))

    def draw(n):
        nats_B, _ = elbo_terms(
            model, inputs_BxT, prefix_lengths_B, lengths_B, t_NxBxK[n],
            jax.random.fold_in(noise_rng, n), mask_id=mask_id, counts=counts,
        )  # fmt: skip
        return nats_B

    tokens_B = target_span(prefix_lengths_B, lengths_B, T).sum(axis=1).astype(jnp.float32)
    return jax.lax.map(draw, jnp.arange(num_samples)), tokens_B
