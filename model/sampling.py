"""AR decoding: a model-agnostic sampling loop, and `generate` (KV cache) / `generate_no_cache`.

The loop knows nothing about the model. It calls
`step_fn(tokens_BxL, positions_B, state) -> (logits_BxV, state)`, which returns the logits for the
token after `positions_B` once the token at `positions_B` has been written into `tokens_BxL`.
The state is the KV cache for `generate` and nothing for `generate_no_cache`, so the two samplers
share every line of sampling logic and differ only in how they compute the next logits.

Sampling parameters are traced arrays: changing temperature, top-k or top-p never recompiles.
"""

import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from model.cache import grow_cache, init_cache
from model.checks import check_prompts, check_rng, check_token_id, is_int, is_real
from model.decoder import Decoder, split_model

StepFn = Callable[[jax.Array, jax.Array, Any], tuple[jax.Array, Any]]


class GenerateOutput(NamedTuple):
    tokens_BxL: jax.Array  # Prompt, then generated tokens, then pad_id.
    lengths_B: jax.Array  # Prompt length + generated tokens (an emitted EOS included).


class SamplingParams(NamedTuple):
    """Temperature, top-k and top-p as traced scalars: new values never recompile."""

    temperature: jax.Array
    top_k: jax.Array
    top_p: jax.Array

    @classmethod
    def checked(cls, temperature: float, top_k: int, top_p: float) -> "SamplingParams":
        """Validated on the host, so bad values fail with a sentence, not a deep traceback."""
        if not is_real(temperature) or not temperature >= 0:
            raise ValueError(
                f"temperature must be a finite number >= 0 (0: greedy), got {temperature!r}"
            )
        if not is_int(top_k) or top_k < 0:
            raise ValueError(f"top_k must be an int >= 0 (0: off), got {top_k!r}")
        if not is_real(top_p) or not 0 < top_p <= 1:
            raise ValueError(f"top_p must be a number in (0, 1] (1: off), got {top_p!r}")
        return cls(jnp.float32(temperature), jnp.int32(top_k), jnp.float32(top_p))


def sample_logits(
    logits_BxV: jax.Array,
    rng: jax.Array,
    temperature: jax.Array,
    top_k: jax.Array,
    top_p: jax.Array,
) -> jax.Array:
    """Samples one token per row; temperature 0 is greedy, top_k 0 and top_p 1 disable filters.

    `lax.cond` on the traced parameters skips work that is not asked for (the sort costs more
    than a decode step of a small model on CPU) without compiling a new program.
    """

    def greedy(logits_BxV):
        return jnp.argmax(logits_BxV, axis=-1).astype(jnp.int32)

    def sample(logits_BxV):
        scaled_BxV = logits_BxV / temperature
        scaled_BxV = jax.lax.cond(
            (top_k > 0) | (top_p < 1),
            filter_top_k_top_p,
            lambda x, k, p: x,
            scaled_BxV,
            top_k,
            top_p,
        )
        return jax.random.categorical(rng, scaled_BxV, axis=-1).astype(jnp.int32)

    return jax.lax.cond(temperature > 0, sample, greedy, logits_BxV)


def filter_top_k_top_p(scaled_BxV: jax.Array, top_k: jax.Array, top_p: jax.Array) -> jax.Array:
    """Masks tokens outside the top-k, then outside the smallest set reaching mass top_p."""
    V = scaled_BxV.shape[-1]
    neg_inf = jnp.finfo(scaled_BxV.dtype).min
    sorted_BxV = jnp.sort(scaled_BxV, axis=-1)[:, ::-1]
    k = jnp.where(top_k > 0, jnp.minimum(top_k, V), V)
    kth_Bx1 = jax.lax.dynamic_slice_in_dim(sorted_BxV, k - 1, 1, axis=-1)
    sorted_BxV = jnp.where(sorted_BxV < kth_Bx1, neg_inf, sorted_BxV)
    probs_BxV = jax.nn.softmax(sorted_BxV, axis=-1)
    mass_before_BxV = jnp.cumsum(probs_BxV, axis=-1) - probs_BxV
    kept_BxV = (mass_before_BxV < top_p) & (sorted_BxV > neg_inf)  # The top token is always kept.
    cutoff_Bx1 = jnp.min(jnp.where(kept_BxV, sorted_BxV, jnp.inf), axis=-1, keepdims=True)
    return jnp.where(scaled_BxV < cutoff_Bx1, neg_inf, scaled_BxV)


def decode_loop(
    step_fn: StepFn,
    state: Any,
    first_logits_BxV: jax.Array,
    tokens_BxL: jax.Array,
    prompt_lengths_B: jax.Array,
    rng: jax.Array,
    temperature: jax.Array,
    top_k: jax.Array,
    top_p: jax.Array,
    eos_id: jax.Array,
    pad_id: int,
    max_new_tokens: int,
    state_updates: Sequence[tuple[int, Callable[[Any], Any]]] = (),
) -> GenerateOutput:
    """Samples up to `max_new_tokens` per row in a `lax.while_loop`, stopping once all rows end.

    `first_logits_BxV` predicts the token after each row's prompt (from the prefill); a row ends
    when it emits `eos_id`, and `pad_id` fills it after that. `state_updates`: (step, fn) pairs
    in increasing step order; the loop pauses before that step and replaces the state by
    `fn(state)`, which may change its shapes (`generate` grows its KV cache so), each pair one
    more while loop (one more compiled copy of `step_fn`)."""
    B = tokens_BxL.shape[0]
    rows_B = jnp.arange(B)

    def emit(i, tokens_BxL, lengths_B, done_B, logits_BxV, rng):
        next_B = sample_logits(logits_BxV, rng, temperature, top_k, top_p)
        next_B = jnp.where(done_B, pad_id, next_B)
        positions_B = prompt_lengths_B + i
        tokens_BxL = tokens_BxL.at[rows_B, positions_B].set(next_B)
        lengths_B = lengths_B + (~done_B).astype(lengths_B.dtype)
        return tokens_BxL, lengths_B, done_B | (next_B == eos_id), positions_B

    # One key per step, split up front: on CPU each threefry call is a small while loop, which
    # would otherwise run inside every decode step, greedy ones included.
    step_rngs = jax.random.split(rng, max_new_tokens)
    done_B = jnp.zeros((B,), bool)
    tokens_BxL, lengths_B, done_B, _ = emit(
        0, tokens_BxL, prompt_lengths_B, done_B, first_logits_BxV, step_rngs[0]
    )

    def cond(end, carry):
        i, _, _, done_B, _ = carry
        return (i < end) & ~jnp.all(done_B)

    def body(carry):
        i, tokens_BxL, lengths_B, done_B, state = carry
        logits_BxV, state = step_fn(tokens_BxL, prompt_lengths_B + i - 1, state)
        found = emit(i, tokens_BxL, lengths_B, done_B, logits_BxV, step_rngs[i])
        return i + 1, *found[:3], state

    carry = (jnp.int32(1), tokens_BxL, lengths_B, done_B, state)
    ends = [step for step, _ in state_updates] + [max_new_tokens]
    updates = [lambda state: state] + [fn for _, fn in state_updates]
    for end, update in zip(ends, updates, strict=True):
        i, tokens_BxL, lengths_B, done_B, state = carry
        carry = (i, tokens_BxL, lengths_B, done_B, update(state))
        carry = jax.lax.while_loop(functools.partial(cond, end), body, carry)
    _, tokens_BxL, lengths_B, _, _ = carry
    return GenerateOutput(tokens_BxL, lengths_B)


def _last_logits(logits_BxTxV: jax.Array, positions_B: jax.Array) -> jax.Array:
    return jnp.take_along_axis(logits_BxTxV, positions_B[:, None, None], axis=1)[:, 0]


def _prefill_with_cache(model, tokens_BxL, prompt_lengths_B, P, max_new_tokens, cache_phases):
    """Prefills the prompts into a KV cache; returns (prompt logits, cache, step_fn, updates).

    The whole prompt goes in one parallel pass; then each step feeds one token: step i writes
    slot P + i - 1 (each row's padding slots stay EMPTY). The last sampled token is never fed
    back, so P + max_new_tokens - 1 slots suffice. Attention reads every slot, so the cache
    starts short and grows in phases (`cache_sizes`).
    """
    call = functools.partial(model, prefix_lengths_B=prompt_lengths_B)
    sizes = cache_sizes(P, max_new_tokens, cache_phases)
    cache = init_cache(model.cfg, tokens_BxL.shape[0], sizes[0])
    logits_BxPxV, cache = call(tokens_BxL[:, :P], lengths_B=prompt_lengths_B, cache=cache)
    updates = [
        (size - P + 1, functools.partial(grow_cache, cache_len=next_size))
        for size, next_size in itertools.pairwise(sizes)
    ]

    def step_fn(tokens_BxL, positions_B, cache):
        token_Bx1 = jnp.take_along_axis(tokens_BxL, positions_B[:, None], axis=1)
        logits_Bx1xV, cache = call(token_Bx1, positions_BxT=positions_B[:, None], cache=cache)
        return logits_Bx1xV[:, 0], cache

    return logits_BxPxV, cache, step_fn, updates


def _prefill_without_cache(model, tokens_BxL, prompt_lengths_B, P):
    """The honest reference: every step recomputes every position from the prefix alone."""
    call = functools.partial(model, prefix_lengths_B=prompt_lengths_B)
    logits_BxPxV, _ = call(tokens_BxL[:, :P], lengths_B=prompt_lengths_B)
    L = tokens_BxL.shape[1]

    def step_fn(tokens_BxL, positions_B, state):
        logits_BxLxV, _ = call(tokens_BxL[:, : L - 1], lengths_B=positions_B + 1)
        return _last_logits(logits_BxLxV, positions_B), state

    return logits_BxPxV, None, step_fn, []


@functools.partial(
    jax.jit,
    static_argnames=("graphdef", "max_new_tokens", "use_cache", "cache_phases", "pad_id"),
)
def _generate_jit(
    graphdef,
    state,
    prompts_BxP,
    prompt_lengths_B,
    rng,
    sampling: SamplingParams,
    eos_id,
    *,
    max_new_tokens,
    use_cache,
    cache_phases,
    pad_id,
):
    model = nnx.merge(graphdef, state)
    P = prompts_BxP.shape[1]
    tokens_BxL = prompt_buffer(prompts_BxP, prompt_lengths_B, P + max_new_tokens, pad_id)
    if use_cache:
        prefill = _prefill_with_cache(
            model, tokens_BxL, prompt_lengths_B, P, max_new_tokens, cache_phases
        )
    else:
        prefill = _prefill_without_cache(model, tokens_BxL, prompt_lengths_B, P)
    logits_BxPxV, loop_state, step_fn, state_updates = prefill
    return decode_loop(
        step_fn,
        loop_state,
        _last_logits(logits_BxPxV, prompt_lengths_B - 1),
        tokens_BxL,
        prompt_lengths_B,
        rng,
        *sampling,
        eos_id,
        pad_id,
        max_new_tokens,
        state_updates,
    )


def prompt_buffer(prompts_BxP, prompt_lengths_B, width: int, pad_id: int) -> jax.Array:
    """The token buffer every decoder writes into: each row's prompt, then pad_id to `width`
    (whatever the caller had in a row's padding is replaced by pad_id)."""
    P = prompts_BxP.shape[1]
    tokens_BxW = jnp.pad(prompts_BxP.astype(jnp.int32), ((0, 0), (0, width - P)))
    real_BxW = jnp.arange(width)[None, :] < prompt_lengths_B[:, None]
    return jnp.where(real_BxW, tokens_BxW, pad_id)


def cache_sizes(P: int, max_new_tokens: int, phases: int | None) -> list[int]:
    """The cache length of each decode phase, growing in equal steps to P + max_new_tokens - 1.

    None picks one phase per 64 decode steps, at most 3: each phase compiles one more copy of
    the decode step (about 0.7 s on a 2-core CPU for the README's shape), so short generations
    keep one phase, and 3 phases already read about 30% fewer cache bytes than one.
    """
    steps = max_new_tokens - 1  # Decode steps after the prefill; step i needs P + i slots.
    if steps == 0:
        return [P]
    phases = min(3, max(1, steps // 64)) if phases is None else min(phases, steps)
    return [P + -(-k * steps // phases) for k in range(1, phases + 1)]


def generate(
    model: Decoder | tuple[nnx.GraphDef, nnx.State],
    prompts_BxP,
    prompt_lengths_B=None,
    *,
    max_new_tokens: int,
    rng: jax.Array | None = None,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    eos_id: int | None = None,
    pad_id: int = 0,
    use_cache: bool = True,
    cache_phases: int | None = None,
) -> GenerateOutput:
    """AR sampling: prefill each (right-padded) prompt, then decode with the KV cache.

    Args:
      model: a Decoder, or its `nnx.split` (graphdef, state).
      prompts_BxP: int token ids, each row right-padded; rows may have different lengths.
      prompt_lengths_B: each row's prompt length (default: P for every row).
      max_new_tokens: tokens to generate per row (fewer if the row emits `eos_id`).
      temperature, top_k, top_p: 0 is greedy; top_k 0 and top_p 1 switch those filters off.
      eos_id: the token that ends a row (None: rows run to `max_new_tokens`).
      pad_id: what fills each row after its end; eos_id and pad_id must be in the vocabulary.
      use_cache: False recomputes the whole prefix each step (see `generate_no_cache`).
      cache_phases: the KV cache grows in this many equal steps, so early decode steps read a
        short cache. 1 allocates it at full length; each phase compiles one more loop body.
        None: one phase per 64 decode steps, at most 3.
    Returns:
      GenerateOutput(tokens_BxL, lengths_B) with L = P + max_new_tokens.
    """
    graphdef, state, cfg = split_model(model)
    prompts_BxP, prompt_lengths_B = check_prompts(cfg, prompts_BxP, prompt_lengths_B)
    sampling = SamplingParams.checked(temperature, top_k, top_p)
    P = prompts_BxP.shape[1]
    if not is_int(max_new_tokens) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
    eos_id = check_token_id(eos_id, "eos_id", cfg.vocab_size, optional=True)
    pad_id = check_token_id(pad_id, "pad_id", cfg.vocab_size)
    if P + max_new_tokens > cfg.max_len + 1:
        # The buffer is static-shaped (P + max_new_tokens) so that prompt contents never recompile.
        # The final token is only sampled, never fed to the model, so it may sit at max_len.
        raise ValueError(
            f"max_new_tokens={max_new_tokens} does not fit: prompts are padded to {P} tokens and "
            f"max_len is {cfg.max_len}, so at most {cfg.max_len + 1 - P} new tokens"
        )
    if cache_phases is not None and (not is_int(cache_phases) or cache_phases < 1):
        raise ValueError(f"cache_phases must be a positive int, got {cache_phases!r}")
    rng = check_rng(rng)
    return _generate_jit(
        graphdef, state, prompts_BxP, prompt_lengths_B, rng, sampling,
        jnp.int32(-1 if eos_id is None else eos_id), max_new_tokens=max_new_tokens,
        use_cache=use_cache, cache_phases=cache_phases if use_cache else 1, pad_id=pad_id,
    )  # fmt: skip


def generate_no_cache(model, prompts_BxP, prompt_lengths_B=None, **kwargs) -> GenerateOutput:
    """`generate` without a cache: exact for every mask kind, and the reference for the cache."""
    return generate(model, prompts_BxP, prompt_lengths_B, use_cache=False, **kwargs)
