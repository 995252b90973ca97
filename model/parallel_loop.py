"""The loop every exact parallel decoder runs (model/speculative.py checks the arguments and picks
the draft): a prefill of the prompts and their first token, then rounds until every row is done.
Each round a draft proposes G tokens per row, the target scores them in one pass over its KV
cache, and verification (model/verify.py) keeps the accepted drafts and one token of the
target's own; rejected drafts' cache slots are forgotten, so the next round overwrites them.
Shape legend: B rows, G draft tokens, V vocab, W buffer width.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from model.cache import KVCache, init_cache
from model.sampling import SamplingParams, prompt_buffer
from model.verify import call_at, distribution, draw, forget, is_greedy, verify


class ParallelOutput(NamedTuple):
    """`GenerateOutput`'s two fields, then how much parallel work each row needed."""

    tokens_BxL: jax.Array  # Prompt, then generated tokens, then pad_id.
    lengths_B: jax.Array  # Prompt length + generated tokens (an emitted EOS included).
    target_passes_B: jax.Array  # Target passes while the row was live, the prefill included.
    drafted_B: jax.Array  # Draft tokens proposed to the row while it was live.
    # Draft tokens the target accepted: accepted / drafted is the acceptance rate. The last
    # round's may run past the row's end (EOS, max_new_tokens) and are then not kept.
    accepted_B: jax.Array


class _Carry(NamedTuple):
    tokens_BxW: jax.Array
    lengths_B: jax.Array
    done_B: jax.Array
    cache: KVCache
    draft_state: object
    round: jax.Array  # Rounds run so far: the row of `rngs_RxK` the next round uses.
    passes_B: jax.Array
    drafted_B: jax.Array
    accepted_B: jax.Array


def _round(
    target, drafter, sampling, eos_id, prompt_lengths_B, max_new_tokens, G, rngs_RxK, c: _Carry
):
    """One round: draft G tokens per row, verify them in one target pass, commit, forget."""
    rngs_K = rngs_RxK[c.round]  # G for the draft, then 2 for verification.
    n_B = c.lengths_B
    drafts_BxG, q_BxGxV, draft_state = drafter.propose(c.draft_state, c.tokens_BxW, n_B, rngs_K[:G])
    last_Bx1 = jnp.take_along_axis(c.tokens_BxW, (n_B - 1)[:, None], axis=1)
    positions_BxG1 = (n_B - 1)[:, None] + jnp.arange(G + 1, dtype=jnp.int32)[None, :]
    inputs_BxG1 = jnp.concatenate([last_Bx1, drafts_BxG], axis=1)
    logits_BxG1xV, cache = call_at(target, inputs_BxG1, positions_BxG1, prompt_lengths_B, c.cache)
    p_BxG1xV = distribution(logits_BxG1xV, sampling)
    accepted_B, next_B = verify(p_BxG1xV, q_BxGxV, drafts_BxG, rngs_K[G:], is_greedy(sampling))
    # The kept drafts, then the target's own token in the slot after them.
    at_kept_end_BxG1 = jnp.arange(G + 1)[None, :] == accepted_B[:, None]
    drafts_BxG1 = jnp.pad(drafts_BxG, ((0, 0), (0, 1)))
    proposal_BxG1 = jnp.where(at_kept_end_BxG1, next_B[:, None], drafts_BxG1)
    # Keep accepted + 1 tokens, cut at the row's budget and after its first EOS.
    is_eos_BxG1 = proposal_BxG1 == eos_id
    first_eos_B = jnp.where(is_eos_BxG1.any(1), jnp.argmax(is_eos_BxG1, axis=1), G + 1)
    budget_B = prompt_lengths_B + max_new_tokens - n_B
    count_B = jnp.minimum(jnp.minimum(accepted_B + 1, budget_B), first_eos_B + 1)
    count_B = jnp.where(c.done_B, 0, count_B)
    offsets_BxW = jnp.arange(c.tokens_BxW.shape[1])[None, :] - n_B[:, None]
    write_BxW = (offsets_BxW >= 0) & (offsets_BxW < count_B[:, None])
    written_BxW = jnp.take_along_axis(proposal_BxG1, jnp.clip(offsets_BxW, 0, G), axis=1)
    tokens_BxW = jnp.where(write_BxW, written_BxW, c.tokens_BxW)
    lengths_B = n_B + count_B
    ended_B = (first_eos_B < count_B) | (lengths_B - prompt_lengths_B >= max_new_tokens)
    live_B = ~c.done_B
    return _Carry(
        tokens_BxW,
        lengths_B,
        c.done_B | ended_B,
        forget(cache, lengths_B),
        drafter.commit(draft_state, lengths_B, count_B, logits_BxG1xV),
        c.round + 1,
        c.passes_B + live_B,
        c.drafted_B + G * live_B,
        c.accepted_B + jnp.where(live_B, accepted_B, 0),
    )


@functools.partial(
    jax.jit,
    static_argnames=("graphdef", "drafter", "num_draft_tokens", "max_new_tokens", "pad_id"),
)
def run_rounds(
    graphdef,
    state,
    drafter,
    draft_params,
    prompts_BxP,
    prompt_lengths_B,
    target_lengths_B,
    rng,
    sampling: SamplingParams,
    eos_id,
    *,
    num_draft_tokens,
    max_new_tokens,
    pad_id,
):
    target = nnx.merge(graphdef, state)
    B, P = prompts_BxP.shape
    G = num_draft_tokens
    W = P + max_new_tokens + G + 1  # Room for a round's proposal past the last kept token.
    cols_1xW = jnp.arange(W)[None, :]
    tokens_BxW = prompt_buffer(prompts_BxP, prompt_lengths_B, W, pad_id)
    # The prefill writes slot j = position j; padding slots stay EMPTY until tokens reach them.
    cache = init_cache(target.cfg, B, P + max_new_tokens + G)
    logits_BxPxV, cache = target(
        tokens_BxW[:, :P],
        lengths_B=prompt_lengths_B,
        prefix_lengths_B=prompt_lengths_B,
        cache=cache,
    )
    cache = cache._replace(index=prompt_lengths_B)  # From here on, one slot index per row.
    rng, first_rng = jax.random.split(rng)
    # Every round commits at least one token, so max_new_tokens rounds of keys suffice; split
    # up front, as threefry is a small rolled loop on CPU that would run in every round.
    rngs_RxK = jax.random.split(rng, (max_new_tokens, G + 2))
    last_Bx1xV = jnp.take_along_axis(logits_BxPxV, (prompt_lengths_B - 1)[:, None, None], axis=1)
    first_B = draw(first_rng, distribution(last_Bx1xV, sampling), is_greedy(sampling))[:, 0]
    tokens_BxW = jnp.where(cols_1xW == prompt_lengths_B[:, None], first_B[:, None], tokens_BxW)
    lengths_B = prompt_lengths_B + 1
    live_B = jnp.ones((B,), jnp.int32)
    carry = _Carry(
        tokens_BxW,
        lengths_B,
        (first_B == eos_id) | (max_new_tokens == 1),
        cache,
        drafter.start(
            draft_params, tokens_BxW[:, :P], prompt_lengths_B, target_lengths_B, sampling, eos_id, W
        ),
        jnp.int32(0),
        live_B,
        0 * live_B,
        0 * live_B,
    )
    body = functools.partial(
        _round, target, drafter, sampling, eos_id, prompt_lengths_B, max_new_tokens, G, rngs_RxK
    )
    c = jax.lax.while_loop(lambda c: ~jnp.all(c.done_B), body, carry)
    L = P + max_new_tokens
    tokens_BxL = jnp.where(cols_1xW[:, :L] < c.lengths_B[:, None], c.tokens_BxW[:, :L], pad_id)
    return ParallelOutput(tokens_BxL, c.lengths_B, c.passes_B, c.drafted_B, c.accepted_B)
