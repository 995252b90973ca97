"""The denoising loop of masked-diffusion sampling, model-agnostic: T steps on one block of
target positions that start as MASK, given `logits_fn(tokens_BxK) -> logits_BxKxV`
(model/diffusion_sampling.py passes a model's; tests pass fakes).

Steps t = 1, 1 - 1/T, ..., 1/T, by one of two strategies:
- ancestral (Sahoo et al. 2024, MDLM): at the step from t to s = t - 1/T each still-masked token
  is unmasked with probability (alpha_s - alpha_t) / (1 - alpha_t) = 1 / (T - i) at step i
  (schedule alpha_t = 1 - t), with a token drawn from the model's distribution; unmasked tokens
  are kept (carry-over). The last step unmasks every token left.
- confidence (MaskGIT; LLaDA's low-confidence remasking): every step proposes a token for each
  masked position and commits the k most probable proposals, so that floor(n (T - i - 1) / T)
  of a block's n tokens are still masked after step i; none after step T - 1.
- first_hit (Zheng et al. 2024, "first-hitting sampler"): ancestral sampling with each token's
  step drawn up front. Under ancestral sampling a token is unmasked at step i with probability
  prod_{i' < i} (1 - 1 / (T - i')) / (T - i) = 1 / T, independently of the others: so each
  target token draws its step uniformly from 0 .. T - 1, and the loop visits only the steps
  where a token of the row is unmasked, one call each, however large T is. A row's tokens and
  proposals are distributed as ancestral's (the logits a reveal reads are those of the row's
  tokens just before it); rows are visited together, event by event, so a batch calls the
  model max over rows of its distinct steps (at most the block's tokens), not once for every
  step at which any row unmasked something.

Proposals are drawn at a temperature (0: argmax) by the Gumbel-max trick, the noise drawn in
high precision (`gumbel_noise`), from the top-k / top-p set when asked; MASK is never drawn. A
step that unmasked nothing leaves the input unchanged, and the next step reuses its logits.
Shape legend: B rows, K block size, V vocab.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from model.nar_masks import ranks
from model.sampling import filter_top_k_top_p

DIFFUSION_STRATEGIES = ("ancestral", "confidence", "first_hit")
LogitsFn = Callable[[jax.Array], jax.Array]


def denoise_loop(
    logits_fn: LogitsFn,
    tokens_BxK: jax.Array,
    target_BxK: jax.Array,
    rng: jax.Array,
    num_steps: jax.Array,
    temperature: jax.Array,
    *,
    mask_id: int,
    strategy: str,
    reuse_logits: bool = True,
    top_k: jax.Array | int = 0,
    top_p: jax.Array | float = 1.0,
) -> tuple[jax.Array, jax.Array]:
    """T = `num_steps` denoising steps on the positions `target_BxK`, which start as MASK.

    Each step reads the logits of the current tokens (MASK where still masked) and unmasks
    tokens by `strategy` (module docstring). Positions outside the target keep their tokens.
    `logits_fn` is called only when the tokens changed since its last call and some are still
    masked: a step that unmasked nothing (ancestral sampling with T above the length unmasks
    nothing at most steps) leaves the logits as they were, so they are reused, a step after the
    last unmasking reads none, and the tokens are those of calling every step
    (the model is deterministic; `reuse_logits=False` calls it every step, the reference).
    Returns the tokens after step T - 1 (no target position is MASK any more), and the number
    of times the loop called `logits_fn` (an int32 scalar).
    """
    tokens_BxK = jnp.where(target_BxK, mask_id, tokens_BxK)
    lengths_B = target_BxK.sum(axis=1)

    def logits_of(tokens_BxK):
        logits_BxKxV = logits_fn(tokens_BxK).astype(jnp.float32)
        return logits_BxKxV.at[..., mask_id].set(-jnp.inf)  # MASK is never a token.

    if strategy == "first_hit":
        return _first_hit(
            logits_of, tokens_BxK, target_BxK, rng, num_steps, temperature, top_k, top_p
        )

    def step(i, carry):
        tokens_BxK, logits_BxKxV, fresh, calls = carry  # fresh: the logits are of these tokens.
        if reuse_logits:
            logits_BxKxV = jax.lax.cond(fresh, lambda t: logits_BxKxV, logits_of, tokens_BxK)
        else:
            logits_BxKxV = logits_of(tokens_BxK)
        calls = calls + (~fresh).astype(jnp.int32)
        noise_rng, unmask_rng = jax.random.split(jax.random.fold_in(rng, i))
        gumbel_BxKxV = gumbel_noise(noise_rng, logits_BxKxV.shape)
        proposal_BxK = _proposals(logits_BxKxV, gumbel_BxKxV, temperature, top_k, top_p)
        masked_BxK = target_BxK & (tokens_BxK == mask_id)
        if strategy == "ancestral":
            # Unmasked with probability 1 / (T - i): u (T - i) < 1 for u ~ U[0, 1).
            u_BxK = jax.random.uniform(unmask_rng, masked_BxK.shape)
            reveal_BxK = masked_BxK & (u_BxK * (num_steps - i) < 1)
        else:
            log_probs_BxKxV = jax.nn.log_softmax(logits_BxKxV, axis=-1)
            confidence_BxK = jnp.take_along_axis(log_probs_BxKxV, proposal_BxK[..., None], -1)
            # Most confident first: rank the masked positions by -confidence; others last.
            order_BxK = ranks(jnp.where(masked_BxK, -confidence_BxK[..., 0], jnp.inf))
            still_masked_B = lengths_B * (num_steps - i - 1) // num_steps
            commit_B = masked_BxK.sum(axis=1) - still_masked_B
            reveal_BxK = masked_BxK & (order_BxK < commit_B[:, None])
        tokens_BxK = jnp.where(reveal_BxK, proposal_BxK.astype(tokens_BxK.dtype), tokens_BxK)
        # The logits serve the next step if nothing changed, or if nothing is left to unmask
        # (no later step reads them). Without reuse, none count as fresh: every step calls.
        done = ~jnp.any(target_BxK & (tokens_BxK == mask_id))
        return tokens_BxK, logits_BxKxV, (~jnp.any(reveal_BxK) | done) & reuse_logits, calls

    if reuse_logits:  # Step 0 reads the first call's logits.
        first = (tokens_BxK, logits_of(tokens_BxK), jnp.bool_(True), jnp.int32(1))
    else:
        shape = jax.eval_shape(logits_of, tokens_BxK)
        first = (tokens_BxK, jnp.zeros(shape.shape, shape.dtype), jnp.bool_(False), jnp.int32(0))
    tokens_BxK, _, _, calls = jax.lax.fori_loop(0, num_steps, step, first)
    return tokens_BxK, calls


def _first_hit(logits_of, tokens_BxK, target_BxK, rng, num_steps, temperature, top_k, top_p):
    """The first_hit strategy (module docstring): (the tokens, the calls: the most distinct
    steps any row unmasks at)."""
    step_rng, draw_rng = jax.random.split(rng)
    K = tokens_BxK.shape[1]
    step_BxK = jax.random.randint(step_rng, tokens_BxK.shape, 0, num_steps)
    step_BxK = jnp.where(target_BxK, step_BxK, jnp.iinfo(jnp.int32).max)
    # A token's event: the number of distinct steps of its row before its own.
    same_BxKxK = step_BxK[:, :, None] == step_BxK[:, None, :]
    earlier_1xKxK = jnp.tril(jnp.ones((K, K), bool), -1)[None]
    first_BxK = target_BxK & ~jnp.any(same_BxKxK & earlier_1xKxK, axis=2)
    before_BxKxK = step_BxK[:, None, :] < step_BxK[:, :, None]
    event_BxK = jnp.sum(before_BxKxK & first_BxK[:, None, :], axis=2)
    num_events = jnp.max(jnp.sum(first_BxK, axis=1), initial=0)

    def event(carry):
        j, tokens_BxK = carry
        logits_BxKxV = logits_of(tokens_BxK)
        gumbel_BxKxV = gumbel_noise(jax.random.fold_in(draw_rng, j), logits_BxKxV.shape)
        proposal_BxK = _proposals(logits_BxKxV, gumbel_BxKxV, temperature, top_k, top_p)
        reveal_BxK = target_BxK & (event_BxK == j)
        return j + 1, jnp.where(reveal_BxK, proposal_BxK.astype(tokens_BxK.dtype), tokens_BxK)

    calls, tokens_BxK = jax.lax.while_loop(
        lambda carry: carry[0] < num_events, event, (jnp.int32(0), tokens_BxK)
    )
    return tokens_BxK, calls


def _proposals(logits_BxKxV, gumbel_BxKxV, temperature, top_k, top_p) -> jax.Array:
    """Gumbel-max draws from softmax(logits / temperature), restricted to the top-k tokens and
    the smallest set holding mass top_p of that distribution (0 and 1: off; `lax.cond` skips
    the sort when both are); temperature 0 is the argmax, which both filters keep."""
    B, K, V = logits_BxKxV.shape
    scaled_NxV = (logits_BxKxV / jnp.maximum(temperature, 1e-6)).reshape(B * K, V)
    filtered_NxV = jax.lax.cond(
        (top_k > 0) | (top_p < 1), filter_top_k_top_p, lambda x, k, p: x, scaled_NxV, top_k, top_p
    )
    kept_BxKxV = (filtered_NxV > jnp.finfo(filtered_NxV.dtype).min).reshape(B, K, V)
    noisy_BxKxV = logits_BxKxV + temperature * gumbel_BxKxV
    return jnp.argmax(jnp.where(kept_BxKxV, noisy_BxKxV, -jnp.inf), axis=-1)


def gumbel_noise(rng: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Gumbel(0, 1) noise in float32 drawn in JAX's "high" mode: its default ("low") mode caps
    the noise at 15.94, which truncates the tail and lowers the diversity of Gumbel-max samples
    over a large vocabulary (Zheng et al. 2024; MDLM, BD3-LM and LLaDA draw it in float64)."""
    return jax.random.gumbel(rng, shape, jnp.float32, mode="high")
