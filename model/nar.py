"""Non-AR decoding: Mask-Predict (Ghazvininejad et al. 2019).

A decoder whose targets see each other (mask `prefix_full` or `full`) is trained to fill in
masked target tokens (model/nar_masks.py builds the training inputs). Mask-Predict then writes
`prompt MASK...MASK` and predicts every target token in one parallel pass; each later pass
re-masks the least confident tokens and predicts them again.

Under `prefix_full` (the paper's encoder-decoder attention, in one stack) the prompt never sees
the targets, so it is encoded once into a KV cache and each pass feeds only the T target tokens;
under `full` every pass re-encodes prompt + target, as the prompt's keys depend on the targets.
An encoder-decoder (either decoder mask) runs its encoder once per call, length head and every
length-beam candidate included, and each pass runs the decoder over `SEP target...` alone.

Target lengths are given by the caller (the evaluation's oracle lengths: each row's reference
length), or predicted by the model's length head (`ModelConfig.length_head`) with a length beam.

The number of passes K is a traced scalar (a `fori_loop` bound), not a static argument: one
compiled program serves K = 1, 2, 4, 8, and the loop's trip count is the only thing K changes.
The refinement loop is model-agnostic, like model/sampling.py's `decode_loop`: it calls
`logits_fn(tokens_BxL) -> logits_BxLxV`, so tests drive it with a fake model.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from model.architectures import architecture_of
from model.cache import init_cache
from model.checks import (
    check_fill_ids,
    check_prompt_cache,
    check_prompts,
    check_targets,
    is_int,
)
from model.decoder import Decoder, split_model
from model.masks import kinds_where
from model.nar_masks import ranks
from model.sampling import GenerateOutput

LogitsFn = Callable[[jax.Array], jax.Array]


def mask_predict_loop(
    logits_fn: LogitsFn,
    tokens_BxL: jax.Array,
    target_BxL: jax.Array,
    target_lengths_B: jax.Array,
    num_iterations: jax.Array,
    mask_id: int,
) -> tuple[jax.Array, jax.Array]:
    """Mask-Predict refinement on `tokens_BxL`, whose target positions `target_BxL` hold MASK.

    Pass 1 predicts every target token (argmax) with its probability. Pass k = 1..K-1 re-masks
    each row's n = floor(T * (K - k) / K) least confident tokens (T = its target length),
    predicts them again, and updates their tokens and probabilities; the others are kept.

    Returns:
      (tokens_BxL, probs_BxL): the refined tokens, and each target token's probability (1.0
      elsewhere).
    """

    def predict(tokens_BxL):
        probs_BxLxV = jax.nn.softmax(logits_fn(tokens_BxL), axis=-1)
        return jnp.argmax(probs_BxLxV, axis=-1).astype(tokens_BxL.dtype), probs_BxLxV.max(-1)

    tokens_BxL = jnp.where(target_BxL, mask_id, tokens_BxL)
    pred_BxL, prob_BxL = predict(tokens_BxL)
    tokens_BxL = jnp.where(target_BxL, pred_BxL, tokens_BxL)
    probs_BxL = jnp.where(target_BxL, prob_BxL, 1.0)

    def refine(k, carry):
        tokens_BxL, probs_BxL = carry
        n_B = target_lengths_B * (num_iterations - k) // num_iterations
        # Non-target positions rank last (+inf), so only target tokens are ever re-masked.
        confidence_BxL = jnp.where(target_BxL, probs_BxL, jnp.inf)
        remask_BxL = target_BxL & (ranks(confidence_BxL) < n_B[:, None])
        pred_BxL, prob_BxL = predict(jnp.where(remask_BxL, mask_id, tokens_BxL))
        tokens_BxL = jnp.where(remask_BxL, pred_BxL, tokens_BxL)
        probs_BxL = jnp.where(remask_BxL, prob_BxL, probs_BxL)
        return tokens_BxL, probs_BxL

    return jax.lax.fori_loop(1, num_iterations, refine, (tokens_BxL, probs_BxL))


@functools.partial(
    jax.jit,
    static_argnames=(
        "graphdef", "max_target_len", "mask_id", "pad_id", "use_cache", "length_beam"
    ),
)  # fmt: skip
def _mask_predict_jit(
    graphdef,
    state,
    prompts_BxP,
    prompt_lengths_B,
    target_lengths_B,
    num_iterations,
    eos_id,
    *,
    max_target_len,
    mask_id,
    pad_id,
    use_cache,
    length_beam,
):
    model = nnx.merge(graphdef, state)
    memory = last_BxD = None
    if use_cache and model.encodes_prompt:  # The encoder's one pass of this call.
        memory, last_BxD = model.encode_prompt(prompts_BxP, prompt_lengths_B)
    decode = functools.partial(
        _decode, model, num_iterations=num_iterations, eos_id=eos_id,
        max_target_len=max_target_len, mask_id=mask_id, pad_id=pad_id, use_cache=use_cache,
    )  # fmt: skip
    if not length_beam:
        return decode(prompts_BxP, prompt_lengths_B, target_lengths_B, memory)[0]
    # A length beam: the length head's top-l lengths (1 .. max_target_len) decoded side by side;
    # each row keeps the candidate with the best mean log-probability of its tokens.
    B, beam = prompts_BxP.shape[0], length_beam
    candidates_BxN = likeliest_lengths(
        model, prompts_BxP, prompt_lengths_B, last_BxD, max_target_len, beam
    )
    out, score_R = decode(
        jnp.repeat(prompts_BxP, beam, axis=0),
        jnp.repeat(prompt_lengths_B, beam, axis=0),
        candidates_BxN.reshape(-1),
        jax.tree.map(lambda x: jnp.repeat(x, beam, axis=0), memory),
    )
    best_B = jnp.argmax(score_R.reshape(B, beam), axis=1)
    rows_B = jnp.arange(B) * beam + best_B
    return GenerateOutput(out.tokens_BxL[rows_B], out.lengths_B[rows_B])


def likeliest_lengths(
    model, prompts_BxP, prompt_lengths_B, last_BxD, max_target_len: int, beam: int
) -> jax.Array:
    """[B, beam]: the length head's `beam` likeliest target lengths in 1 .. max_target_len,
    from an encoder-decoder's `encode_prompt` state `last_BxD` (None: from the prompts)."""
    if last_BxD is None:
        logits_BxC = model.length_logits(prompts_BxP, prompt_lengths_B)
    else:
        logits_BxC = model.length_logits_of(last_BxD)
    C_1xC = jnp.arange(logits_BxC.shape[1])[None, :]
    allowed_1xC = (C_1xC >= 1) & (C_1xC <= max_target_len)
    _, candidates_BxN = jax.lax.top_k(jnp.where(allowed_1xC, logits_BxC, -jnp.inf), beam)
    return candidates_BxN.astype(jnp.int32)


def _decode(
    model, prompts_BxP, prompt_lengths_B, target_lengths_B, memory, *, num_iterations, eos_id,
    max_target_len, mask_id, pad_id, use_cache,
) -> tuple[GenerateOutput, jax.Array]:  # fmt: skip
    """Mask-predict given each row's target length (and an encoder-decoder's `memory` of the
    prompts, or None): its output, and each row's mean log-probability of its target tokens
    (what a length beam ranks candidates by)."""
    B, P = prompts_BxP.shape
    W = P + max_target_len  # The model's input width; EOS goes in one more slot, never fed.
    cols_1xW = jnp.arange(W)[None, :]
    ends_B = prompt_lengths_B + target_lengths_B
    prompts_BxP = jnp.where(jnp.arange(P)[None, :] < prompt_lengths_B[:, None], prompts_BxP, pad_id)
    tokens_BxW = jnp.pad(prompts_BxP, ((0, 0), (0, max_target_len)), constant_values=pad_id)
    target_BxW = (cols_1xW >= prompt_lengths_B[:, None]) & (cols_1xW < ends_B[:, None])
    if use_cache:
        logits_fn = _target_logits_fn(
            model, prompts_BxP, prompt_lengths_B, target_lengths_B, max_target_len, memory
        )
        target_BxT = jnp.arange(max_target_len)[None, :] < target_lengths_B[:, None]
        tokens_BxT, target_probs_BxT = mask_predict_loop(
            logits_fn,
            jnp.full((B, max_target_len), mask_id, jnp.int32),
            target_BxT,
            target_lengths_B,
            num_iterations,
            mask_id,
        )
        # Row b's target goes right after its prompt: column c holds target token c - len_b.
        offsets_BxW = jnp.clip(cols_1xW - prompt_lengths_B[:, None], 0, max_target_len - 1)
        targets_BxW = jnp.take_along_axis(tokens_BxT, offsets_BxW, axis=1)
        tokens_BxW = jnp.where(target_BxW, targets_BxW, tokens_BxW)
    else:

        def logits_fn(tokens_BxW):
            # Padding lies beyond ends_B: invisible to every query.
            logits_BxWxV, _ = model(tokens_BxW, lengths_B=ends_B, prefix_lengths_B=prompt_lengths_B)
            return logits_BxWxV

        tokens_BxW, target_probs_BxT = mask_predict_loop(
            logits_fn, tokens_BxW, target_BxW, target_lengths_B, num_iterations, mask_id
        )
    score_B = jnp.log(target_probs_BxT).sum(axis=1) / jnp.maximum(target_lengths_B, 1)
    tokens_BxL = jnp.pad(tokens_BxW, ((0, 0), (0, 1)), constant_values=pad_id)
    with_eos = eos_id >= 0
    eos_BxL = (jnp.arange(W + 1)[None, :] == ends_B[:, None]) & with_eos
    tokens_BxL = jnp.where(eos_BxL, eos_id, tokens_BxL)
    return GenerateOutput(tokens_BxL, ends_B + with_eos.astype(jnp.int32)), score_B


def _target_logits_fn(
    model, prompts_BxP, prompt_lengths_B, target_lengths_B, T, memory
) -> LogitsFn:
    """`logits_fn` over the T target slots alone, the prompt's state computed once.

    An encoder-decoder (`memory`: its encoder output, from `encode_prompt`): each pass runs the
    decoder over `SEP target...` only (`EncoderDecoder.target_logits_fn`). A `prefix_full`
    decoder: the prompt never attends to the targets, so its keys and values are the same in
    every pass; one prefill writes them to cache slots [0, P), and each pass feeds only the
    target tokens (positions prompt_len + j), writing slots [P, P + T) of that same prefilled
    cache afresh.
    """
    if memory is not None:
        return model.target_logits_fn(memory, prompts_BxP, prompt_lengths_B, target_lengths_B, T)
    B, P = prompts_BxP.shape
    cache = init_cache(model.cfg, B, P + T)
    _, prompt_cache = model(
        prompts_BxP, lengths_B=prompt_lengths_B, prefix_lengths_B=prompt_lengths_B, cache=cache
    )
    positions_BxT = prompt_lengths_B[:, None] + jnp.arange(T, dtype=jnp.int32)[None, :]

    def logits_fn(tokens_BxT):
        logits_BxTxV, _ = model(
            tokens_BxT,
            positions_BxT=positions_BxT,
            lengths_B=target_lengths_B,
            prefix_lengths_B=prompt_lengths_B,
            cache=prompt_cache,
        )
        return logits_BxTxV

    return logits_fn


def mask_predict(
    model: Decoder | tuple[nnx.GraphDef, nnx.State],
    prompts_BxP,
    prompt_lengths_B,
    target_lengths_B,
    *,
    num_iterations: int,
    mask_id: int,
    pad_id: int = 0,
    eos_id: int | None = None,
    max_target_len: int | None = None,
    use_cache: bool | None = None,
    length_beam: int = 3,
) -> GenerateOutput:
    """Mask-Predict with K = `num_iterations` passes over `prompt MASK * target_len`.

    K = 1 is one-shot parallel decoding. The model must be trained with a masked objective
    (`masked`, `glancing`), under a mask whose targets see every target. Lengths are given, or,
    with `target_lengths_B=None`, predicted by the model's length head: its `length_beam` most
    likely lengths are decoded side by side, and each row keeps the one whose tokens have the
    best mean log-probability (Ghazvininejad et al. 2019's length beam).

    Args:
      model: a Decoder, or its `nnx.split` (graphdef, state).
      prompts_BxP: int token ids, each row right-padded; rows may have different lengths.
      prompt_lengths_B: each row's prompt length.
      target_lengths_B: each row's number of target tokens (>= 1), or None: predicted.
      num_iterations: K >= 1; traced, so changing it never recompiles.
      mask_id: the MASK token id the model was trained with (data/vocab.py).
      pad_id: what fills each row after its end; it and the ids above must be in the vocabulary.
      eos_id: appended after each row's target, as `generate` emits it (None: not appended).
      max_target_len: the static target width (default: the largest target length, or with
        predicted lengths max_len - P); fix it to reuse one compiled program across batches.
      length_beam: lengths tried per row when they are predicted.
      use_cache: encode the prompt once and feed only the targets in each pass: exact where the
        prompt never sees the targets (`MaskKind.caches_prompt`, or an encoder-decoder under
        either mask), which None picks; False re-encodes prompt + target every pass (the
        reference the cached path is tested against).
    Returns:
      GenerateOutput(tokens_BxL, lengths_B) with L = P + max_target_len + 1: prompt, predicted
      target, EOS (if eos_id is given), then pad_id; lengths = prompt + target (+ 1 for EOS).
      The EOS slot is never fed to the model, so P + max_target_len <= max_len suffices.
    """
    graphdef, state, cfg = split_model(model)
    if target_lengths_B is None:
        target_lengths_B, max_target_len = predicted_lengths(
            cfg, prompts_BxP, max_target_len, length_beam, "mask_predict"
        )
    else:
        length_beam = 0  # The lengths are given: no length beam.
    prompts_BxP, prompt_lengths_B, target_lengths_B, max_target_len = _check_inputs(
        cfg, prompts_BxP, prompt_lengths_B, target_lengths_B, num_iterations, max_target_len
    )
    mask_id, pad_id, eos_id = check_fill_ids(cfg, mask_id, pad_id, eos_id)
    use_cache = check_prompt_cache(
        cfg, use_cache, "mask_predict", bidirectional_cached, "pass",
        encodes_prompt=architecture_of(cfg).encodes_prompt,
    )  # fmt: skip
    return _mask_predict_jit(
        graphdef, state, prompts_BxP, prompt_lengths_B, target_lengths_B,
        jnp.int32(num_iterations), jnp.int32(-1 if eos_id is None else eos_id),
        max_target_len=max_target_len, mask_id=mask_id, pad_id=pad_id, use_cache=use_cache,
        length_beam=length_beam,
    )  # fmt: skip


def predicted_lengths(cfg, prompts_BxP, max_target_len, length_beam, decoder: str):
    """(placeholder target lengths, max_target_len) where the length head predicts them,
    checked on the host: the model has a length head, and the beam fits the target width."""
    if not cfg.length_head:
        raise ValueError(
            f"{decoder} without target_lengths needs a model with a length head "
            "(model.length_head=True, trained with an objective that trains it)"
        )
    B, P = np.shape(prompts_BxP)
    max_target_len = cfg.max_len - P if max_target_len is None else max_target_len
    if not is_int(length_beam) or not 1 <= length_beam <= max_target_len:
        raise ValueError(
            f"length_beam must be an int in [1, max_target_len={max_target_len}], "
            f"got {length_beam!r}"
        )
    return np.ones((B,), np.int32), max_target_len  # Checked as a placeholder; not used.


def _check_inputs(cfg, prompts_BxP, prompt_lengths_B, target_lengths_B, K, max_target_len):
    """Validates on the host, so bad input fails with a sentence rather than a deep traceback."""
    if cfg.mask.target_view != "all":
        raise ValueError(
            f"mask_predict needs a model whose targets see each other "
            f"({kinds_where(lambda k: k.target_view == 'all')}), trained "
            f"with the masked (CMLM) objective; this model's attention_mask_kind is "
            f"{cfg.attention_mask_kind!r}"
        )
    prompts_BxP, prompt_lengths_B = check_prompts(cfg, prompts_BxP, prompt_lengths_B)
    if isinstance(K, bool) or not isinstance(K, int | np.integer) or K < 1:
        raise ValueError(f"num_iterations must be an int >= 1, got {K!r}")
    target_lengths_B, max_target_len = check_targets(
        cfg, prompts_BxP.shape, target_lengths_B, max_target_len
    )
    return prompts_BxP, prompt_lengths_B, target_lengths_B, max_target_len


def bidirectional_cached(kind) -> bool:
    """A mask kind mask-predict runs on with a cache of the prompt."""
    return kind.target_view == "all" and kind.caches_prompt
