"""Beam search over the KV cache, with a correct per-row stopping rule.

Each step scores every (beam, token) continuation of the K live beams, keeps the 2K best
candidates (so K can still live when up to K of them end), moves those among the K best that end
in EOS to the row's finished list (fairseq's rule, under which a beam of 1 is greedy decoding),
scored by log-probability / length penalty ((5 + length) / 6) ** alpha (Wu et al. 2016), and
continues with the K best candidates that do not end. A row stops when it has K finished beams
and no live beam can still beat the worst of them: a live beam's log-probability only falls, so
its best possible score is its log-probability over the largest penalty it could reach, at
`max_new_tokens` (for alpha >= 0). Rows stop independently; the loop ends when every row has.

Like `decode_loop`, `beam_loop` knows nothing about the model: it calls
`step_fn(tokens, positions, state) -> (logits, state)` on B*K rows and
`gather_state(state, rows) -> state` to reorder the cache after beams are picked, so tests run it
on fake models. Shape legend: B rows, K beams, C = 2K candidates, V vocab, L buffer, P prompt.
"""

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from model.cache import KVCache, init_cache
from model.checks import check_cached_decoding, check_prompts, check_token_id, is_int, is_real
from model.decoder import Decoder, split_model
from model.sampling import prompt_buffer

NEG_INF = -jnp.inf


class BeamOutput(NamedTuple):
    tokens_BxKxL: jax.Array  # The n-best continuations of each prompt, best first.
    lengths_BxK: jax.Array  # Prompt + generated tokens (EOS included).
    scores_BxK: jax.Array  # log p / length penalty; -inf for an empty slot.


def length_penalty(length: jax.Array, alpha: float) -> jax.Array:
    """((5 + length) / 6) ** alpha (Wu et al. 2016); 1 for alpha = 0."""
    return ((5.0 + length) / 6.0) ** alpha


def _merge(scores_a, tokens_a, lengths_a, scores_b, tokens_b, lengths_b, K: int):
    """The K best of two scored sets of sequences (per row), best first."""
    scores = jnp.concatenate([scores_a, scores_b], axis=1)
    best_BxK, pick_BxK = jax.lax.top_k(scores, K)
    tokens = jnp.concatenate([tokens_a, tokens_b], axis=1)
    lengths = jnp.concatenate([lengths_a, lengths_b], axis=1)
    return (
        best_BxK,
        jnp.take_along_axis(tokens, pick_BxK[..., None], axis=1),
        jnp.take_along_axis(lengths, pick_BxK, axis=1),
    )


def _extend(tokens_BxKxL, parent_BxC, token_BxC, positions_B):
    """The parents' token rows with each candidate's token written at `positions_B`."""
    rows = jnp.take_along_axis(tokens_BxKxL, parent_BxC[..., None], axis=1)
    at_BxCxL = jnp.arange(rows.shape[-1])[None, None, :] == positions_B[:, None, None]
    return jnp.where(at_BxCxL, token_BxC[..., None], rows)


def _select(live_BxK, tokens_BxKxL, finished, logits_BxKxV, positions_B, i, eos_id, alpha):
    """One step's choice: (live scores, live tokens, finished set, each live beam's parent).

    Scores every (beam, token) continuation, keeps the 2K best; those among the K best that end
    in EOS join the finished set (fairseq's rule: so a beam of 1 is greedy decoding), and the K
    best that do not end live on.
    """
    B, K, V = logits_BxKxV.shape
    scores_BxKxV = live_BxK[..., None] + jax.nn.log_softmax(logits_BxKxV, axis=-1)
    top_BxC, index_BxC = jax.lax.top_k(scores_BxKxV.reshape(B, K * V), 2 * K)
    parent_BxC, token_BxC = index_BxC // V, (index_BxC % V).astype(tokens_BxKxL.dtype)
    candidates_BxCxL = _extend(tokens_BxKxL, parent_BxC, token_BxC, positions_B)
    ends_BxC = token_BxC == eos_id
    in_top_k_1xC = jnp.arange(2 * K)[None, :] < K
    ended_BxC = jnp.where(
        ends_BxC & in_top_k_1xC, top_BxC / length_penalty(i + 1.0, alpha), NEG_INF
    )
    ended_lengths_BxC = jnp.broadcast_to(positions_B[:, None] + 1, ended_BxC.shape)
    finished = _merge(*finished, ended_BxC, candidates_BxCxL, ended_lengths_BxC, K)
    live_BxK, pick_BxK = jax.lax.top_k(jnp.where(ends_BxC, NEG_INF, top_BxC), K)
    tokens_BxKxL = jnp.take_along_axis(candidates_BxCxL, pick_BxK[..., None], axis=1)
    return live_BxK, tokens_BxKxL, finished, jnp.take_along_axis(parent_BxC, pick_BxK, axis=1)


def beam_loop(
    step_fn: Callable[[jax.Array, jax.Array, Any], tuple[jax.Array, Any]],
    gather_state: Callable[[Any, jax.Array], Any],
    state: Any,
    first_logits_BxV: jax.Array,
    tokens_BxL: jax.Array,
    prompt_lengths_B: jax.Array,
    *,
    beam_size: int,
    max_new_tokens: int,
    eos_id: int,
    alpha: float,
) -> BeamOutput:
    """Beam search from prefilled prompts; `state` already holds K copies of each row (B*K).

    An `eos_id` outside the vocabulary (-1) ends no beam: each then runs to max_new_tokens.
    """
    B, L = tokens_BxL.shape
    K = beam_size
    best_bound = length_penalty(jnp.float32(max_new_tokens), alpha)

    def body(carry):
        i, live_BxK, tokens_BxKxL, finished, logits_BxKxV, state, done_B = carry
        positions_B = prompt_lengths_B + i
        selected = _select(
            live_BxK, tokens_BxKxL, finished, logits_BxKxV, positions_B, i, eos_id, alpha
        )
        # Rows already done keep everything as it was (each beam its own parent).
        kept = (live_BxK, tokens_BxKxL, finished, jnp.arange(K)[None, :])
        live_BxK, tokens_BxKxL, finished, parent_BxK = _unless_done(done_B, kept, selected)
        rows_BK = (jnp.arange(B)[:, None] * K + parent_BxK).reshape(B * K)
        state = gather_state(state, rows_BK)
        # A row is done once its K finished beams cannot be beaten by any live one.
        worst_finished_B = finished[0][:, K - 1]
        done_B = done_B | (worst_finished_B >= live_BxK[:, 0] / best_bound)

        def feed(state):
            logits_BKxV, state = step_fn(
                tokens_BxKxL.reshape(B * K, L), jnp.repeat(positions_B, K), state
            )
            return logits_BKxV.reshape(logits_BxKxV.shape), state

        # The last token is never fed back (the buffer may end at max_len + 1).
        logits_BxKxV, state = jax.lax.cond(
            i + 1 < max_new_tokens, feed, lambda state: (logits_BxKxV, state), state
        )
        return i + 1, live_BxK, tokens_BxKxL, finished, logits_BxKxV, state, done_B

    def cond(carry):
        i, *_, done_B = carry
        return (i < max_new_tokens) & ~jnp.all(done_B)

    beams = _initial_beams(first_logits_BxV, tokens_BxL, prompt_lengths_B, K)
    carry = (jnp.int32(0), *beams, state, jnp.zeros(B, bool))
    i, live_BxK, tokens_BxKxL, finished, _, _, _ = jax.lax.while_loop(cond, body, carry)
    # Beams still live at the end compete with the finished ones at their current length.
    live_scores = live_BxK / length_penalty(i.astype(jnp.float32), alpha)
    lengths_BxK = jnp.broadcast_to(prompt_lengths_B[:, None] + i, (B, K))
    scores, tokens, lengths = _merge(*finished, live_scores, tokens_BxKxL, lengths_BxK, K)
    return BeamOutput(tokens, lengths, scores)


def _initial_beams(first_logits_BxV, tokens_BxL, prompt_lengths_B, K: int):
    """(live scores, tokens, finished beams, logits) before the first step: one live beam per
    row (the others at -inf, so that the first step does not pick K copies of one token), no
    finished beam, and every beam's logits the prompt's."""
    B, L = tokens_BxL.shape
    live_BxK = jnp.where(jnp.arange(K)[None, :] == 0, 0.0, NEG_INF) * jnp.ones((B, 1))
    tokens_BxKxL = jnp.broadcast_to(tokens_BxL[:, None], (B, K, L))
    finished = (
        jnp.full((B, K), NEG_INF),
        tokens_BxKxL,
        jnp.broadcast_to(prompt_lengths_B[:, None], (B, K)),
    )
    logits_BxKxV = jnp.broadcast_to(first_logits_BxV[:, None], (B, K, first_logits_BxV.shape[-1]))
    return live_BxK, tokens_BxKxL, finished, logits_BxKxV


def _unless_done(done_B, kept, selected):
    """`selected` (a tree of [B, K, ...] arrays) in the rows still searching; `kept` (the same
    tree, [B or 1, K, ...]) in the rows that are done."""
    return jax.tree.map(
        lambda old, new: jnp.where(done_B.reshape((-1,) + (1,) * (new.ndim - 1)), old, new),
        kept,
        selected,
    )


def _gather_cache(cache: KVCache, rows: jax.Array) -> KVCache:
    """The cache rows of the picked beams; the shared slot index is left alone."""
    take = functools.partial(jnp.take, indices=rows, axis=0)
    return cache._replace(
        layers=jax.tree.map(take, cache.layers),
        key_positions_BxS=take(cache.key_positions_BxS),
        memory=jax.tree.map(take, cache.memory),  # An encoder-decoder's: one copy per beam.
    )


@functools.partial(
    jax.jit,
    static_argnames=("graphdef", "beam_size", "max_new_tokens", "eos_id", "alpha", "pad_id"),
)
def _beam_search_jit(
    graphdef,
    state,
    prompts_BxP,
    prompt_lengths_B,
    *,
    beam_size,
    max_new_tokens,
    eos_id,
    alpha,
    pad_id,
):
    model = nnx.merge(graphdef, state)
    B, P = prompts_BxP.shape
    K, L = beam_size, P + max_new_tokens
    tokens_BxL = prompt_buffer(prompts_BxP, prompt_lengths_B, L, pad_id)
    call = functools.partial(model, prefix_lengths_B=jnp.repeat(prompt_lengths_B, K))
    # Prefill once per row, then copy each row's cache to its K beams.
    cache = init_cache(model.cfg, B, max(L - 1, P))
    logits_BxPxV, cache = model(
        tokens_BxL[:, :P],
        lengths_B=prompt_lengths_B,
        prefix_lengths_B=prompt_lengths_B,
        cache=cache,
    )
    first_logits_BxV = jnp.take_along_axis(
        logits_BxPxV, (prompt_lengths_B - 1)[:, None, None], axis=1
    )[:, 0]
    cache = _gather_cache(cache, jnp.repeat(jnp.arange(B), K))

    def step_fn(tokens_BKxL, positions_BK, cache):
        token_BKx1 = jnp.take_along_axis(tokens_BKxL, positions_BK[:, None], axis=1)
        logits, cache = call(token_BKx1, positions_BxT=positions_BK[:, None], cache=cache)
        return logits[:, 0], cache

    return beam_loop(
        step_fn,
        _gather_cache,
        cache,
        first_logits_BxV,
        tokens_BxL,
        prompt_lengths_B,
        beam_size=K,
        max_new_tokens=max_new_tokens,
        eos_id=eos_id,
        alpha=alpha,
    )


def beam_search(
    model: Decoder | tuple[nnx.GraphDef, nnx.State],
    prompts_BxP,
    prompt_lengths_B=None,
    *,
    beam_size: int,
    max_new_tokens: int,
    eos_id: int | None = None,
    length_penalty: float = 0.6,
    pad_id: int = 0,
) -> BeamOutput:
    """The `beam_size` best continuations of each prompt (n-best, best first), with scores.

    Decodes with the KV cache, so it takes causal and prefix models only (the cache is exact for
    them alone). `eos_id` ends a beam (None: no EOS, every beam runs to `max_new_tokens`).
    `length_penalty` is the alpha of ((5 + length) / 6) ** alpha; 0 scores by log-probability
    alone, under which beam_size = 1 is greedy decoding.
    """
    graphdef, state, cfg = split_model(model)
    check_cached_decoding(cfg, "model")
    prompts_BxP, prompt_lengths_B = check_prompts(cfg, prompts_BxP, prompt_lengths_B)
    P = prompts_BxP.shape[1]
    if not is_int(beam_size) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive int, got {beam_size!r}")
    if not is_int(max_new_tokens) or not 1 <= max_new_tokens <= cfg.max_len + 1 - P:
        raise ValueError(
            f"max_new_tokens must be an int in [1, {cfg.max_len + 1 - P}] (max_len "
            f"{cfg.max_len}, prompts padded to {P}), got {max_new_tokens!r}"
        )
    eos_id = check_token_id(eos_id, "eos_id", cfg.vocab_size, optional=True)
    pad_id = check_token_id(pad_id, "pad_id", cfg.vocab_size)
    if not is_real(length_penalty) or length_penalty < 0:
        raise ValueError(f"length_penalty must be a number >= 0, got {length_penalty!r}")
    return _beam_search_jit(
        graphdef,
        state,
        prompts_BxP,
        prompt_lengths_B,
        beam_size=int(beam_size),
        max_new_tokens=int(max_new_tokens),
        eos_id=-1 if eos_id is None else eos_id,  # -1: no token ends a beam.
        alpha=float(length_penalty),
        pad_id=pad_id,
    )
