"""CTC's canvas and its one-pass decoder (Libovický & Helcl 2018; Gu & Kong 2021).

A CTC model writes a canvas of `ratio` x S slots after its prompt `BOS source SEP` (S source
tokens), one token or a blank per slot, in one parallel pass; the output is the canvas collapsed:
repeats merged, then blanks dropped. Training marginalises over every canvas that collapses to
the reference (objectives/ctc.py, `optax.ctc_loss`), so no length head is needed and a token may
land on any slot.

What the canvas slots read: slot j holds the source token at floor(j / ratio), the source copied
uniformly onto the canvas (Libovický & Helcl upsample the encoder's states, GLAT's
`--src-embedding-copy` copies source embeddings; here the copied *token* is embedded at the
slot's own position, which the one-row layout of model/decoder.py allows). Canvas slots see each
other and the prompt (a mask kind whose targets see every target: full or prefix_full).

Shape legend: B rows, P prompt width, W row width (the prompt and the widest canvas, within the
model's max_len), K canvas slots (W).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from model.architectures import architecture_of
from model.checks import check_prompts, check_token_id, is_int
from model.decoder import Decoder, split_model
from model.sampling import GenerateOutput


def canvas_rows(
    prompts_BxP: jax.Array,
    prompt_lengths_B: jax.Array,
    ratio: int,
    width: int,
    pad_id: int,
    source: tuple[jax.Array, jax.Array] | None = None,
) -> tuple[jax.Array, jax.Array]:
    """(rows [B, W]: each prompt, then its canvas of source tokens copied uniformly, then pad_id;
    each row's canvas length, `ratio` x its source length, cut to fit W).

    `source`: (rows `BOS source SEP` [B, L], their lengths) to copy from, when the prompts do
    not hold the source (an encoder-decoder's split rows, whose prompt is the SEP alone).
    """
    B, P = prompts_BxP.shape
    padded_BxW = jnp.pad(prompts_BxP, ((0, 0), (0, max(width - P, 0))))[:, :width]
    source_BxL, source_prompt_B = (padded_BxW, prompt_lengths_B) if source is None else source
    source_len_B = jnp.maximum(source_prompt_B - 2, 0)  # BOS source SEP.
    canvas_len_B = jnp.minimum(ratio * source_len_B, width - prompt_lengths_B)
    cols_1xW = jnp.arange(width)[None, :]
    slot_BxW = cols_1xW - prompt_lengths_B[:, None]
    in_canvas_BxW = (slot_BxW >= 0) & (slot_BxW < canvas_len_B[:, None])
    source_col_BxW = 1 + jnp.clip(slot_BxW // ratio, 0, jnp.maximum(source_len_B - 1, 0)[:, None])
    source_col_BxW = jnp.minimum(source_col_BxW, source_BxL.shape[1] - 1)
    copied_BxW = jnp.take_along_axis(source_BxL, source_col_BxW, axis=1)
    in_prompt_BxW = cols_1xW < prompt_lengths_B[:, None]
    rows_BxW = jnp.where(in_prompt_BxW, padded_BxW, jnp.where(in_canvas_BxW, copied_BxW, pad_id))
    return rows_BxW.astype(jnp.int32), canvas_len_B


def canvas_logits(
    model: Decoder,
    rows_BxW: jax.Array,
    prompt_lengths_B: jax.Array,
    canvas_len_B: jax.Array,
    dropout_rng: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """(the logits of each canvas slot [B, K, V], slot first; padding [B, K], 1.0 past a row's
    canvas), from one parallel pass over the rows."""  # fmt: skip
    logits_BxWxV, _ = model(
        rows_BxW,
        lengths_B=prompt_lengths_B + canvas_len_B,
        prefix_lengths_B=prompt_lengths_B,
        dropout_rng=dropout_rng,
    )
    W = rows_BxW.shape[1]
    slots_1xK = jnp.arange(W)[None, :]
    cols_BxK = jnp.minimum(prompt_lengths_B[:, None] + slots_1xK, W - 1)
    slot_logits_BxKxV = jnp.take_along_axis(logits_BxWxV, cols_BxK[:, :, None], axis=1)
    paddings_BxK = (slots_1xK >= canvas_len_B[:, None]).astype(jnp.float32)
    return slot_logits_BxKxV, paddings_BxK


def collapse(
    tokens_BxK: jax.Array, valid_BxK: jax.Array, blank_id: int, pad_id: int
) -> tuple[jax.Array, jax.Array]:
    """CTC's collapse: (each row's tokens with repeats merged and then blanks dropped, left
    aligned and padded with pad_id [B, K]; their number [B]). A blank between two equal tokens
    keeps both ("a _ a" is "a a"); "a a" is "a"."""
    B, K = tokens_BxK.shape
    previous_BxK = jnp.pad(tokens_BxK, ((0, 0), (1, 0)), constant_values=-1)[:, :K]
    keep_BxK = valid_BxK & (tokens_BxK != blank_id) & (tokens_BxK != previous_BxK)
    dest_BxK = jnp.where(keep_BxK, jnp.cumsum(keep_BxK, axis=1) - 1, K)  # K: dropped.
    out_BxK = jnp.full((B, K), pad_id, jnp.int32)
    out_BxK = out_BxK.at[jnp.arange(B)[:, None], dest_BxK].set(tokens_BxK, mode="drop")
    return out_BxK, keep_BxK.sum(axis=1).astype(jnp.int32)


def canvas_slots(P: int, ratio: int) -> int:
    """The widest canvas of a prompt `BOS source SEP` of P tokens: ratio x (P - 2) slots."""
    return ratio * max(P - 2, 1)


def row_width(P: int, ratio: int) -> int:
    """A prompt of P tokens (`BOS source SEP`) and its canvas."""
    return P + canvas_slots(P, ratio)


def canvas_width(max_len: int, P: int, ratio: int) -> int:
    """The row width a one-pass decoder needs: the widest prompt and the widest canvas it can
    have, within max_len."""
    return min(max_len, row_width(P, ratio))


def _slot_logits(model, prompts_BxP, prompt_lengths_B, ratio, W, pad_id, split):
    """(the logits of each canvas slot [B, K, V], padding [B, K]) of rows W wide: one pass over
    [prompt, canvas] rows, or (`split`, an encoder-decoder) the encoder over the prompts and the
    decoder over `SEP canvas` alone (`EncoderDecoder.target_logits_fn`), as it trains."""
    rows_BxW, canvas_len_B = canvas_rows(prompts_BxP, prompt_lengths_B, ratio, W, pad_id)
    if not split:
        return canvas_logits(model, rows_BxW, prompt_lengths_B, canvas_len_B)
    K = W - prompts_BxP.shape[1]
    cols_BxK = jnp.minimum(prompt_lengths_B[:, None] + jnp.arange(K)[None, :], W - 1)
    canvas_BxK = jnp.take_along_axis(rows_BxW, cols_BxK, axis=1)
    memory, _ = model.encode_prompt(prompts_BxP, prompt_lengths_B)
    logits_fn = model.target_logits_fn(memory, prompts_BxP, prompt_lengths_B, canvas_len_B, K)
    paddings_BxK = (jnp.arange(K)[None, :] >= canvas_len_B[:, None]).astype(jnp.float32)
    return logits_fn(canvas_BxK), paddings_BxK


@functools.partial(
    jax.jit,
    static_argnames=(
        "graphdef", "ratio", "max_new_tokens", "blank_id", "pad_id", "width", "split"
    ),
)  # fmt: skip
def _ctc_jit(graphdef, state, prompts_BxP, prompt_lengths_B, eos_id, *, ratio, max_new_tokens,
             blank_id, pad_id, width=None, split=False):  # fmt: skip
    """The collapsed argmax canvas of every prompt, written after it as `generate` writes, from
    one pass over rows `width` wide (None: `canvas_width`; the model's max_len is the widest)."""
    model = nnx.merge(graphdef, state)
    P = prompts_BxP.shape[1]
    W = canvas_width(model.cfg.max_len, P, ratio) if width is None else width
    logits_BxKxV, paddings_BxK = _slot_logits(
        model, prompts_BxP, prompt_lengths_B, ratio, W, pad_id, split
    )
    best_BxK = jnp.argmax(logits_BxKxV, axis=-1).astype(jnp.int32)
    out_BxK, count_B = collapse(best_BxK, paddings_BxK == 0, blank_id, pad_id)
    room = max_new_tokens - 1  # One slot for EOS.
    count_B = jnp.minimum(count_B, room)
    L = P + max_new_tokens
    tokens_BxL = jnp.pad(prompts_BxP, ((0, 0), (0, max_new_tokens)))
    cols_1xL = jnp.arange(L)[None, :]
    offset_BxL = cols_1xL - prompt_lengths_B[:, None]
    written_BxL = jnp.take_along_axis(out_BxK, jnp.clip(offset_BxL, 0, out_BxK.shape[1] - 1), 1)
    in_output_BxL = (offset_BxL >= 0) & (offset_BxL < count_B[:, None])
    tokens_BxL = jnp.where(cols_1xL < prompt_lengths_B[:, None], tokens_BxL, pad_id)
    tokens_BxL = jnp.where(in_output_BxL, written_BxL, tokens_BxL)
    has_eos = eos_id >= 0
    tokens_BxL = jnp.where(has_eos & (offset_BxL == count_B[:, None]), eos_id, tokens_BxL)
    lengths_B = prompt_lengths_B + count_B + has_eos.astype(jnp.int32)
    return GenerateOutput(tokens_BxL, lengths_B)


def ctc_generate(
    model: Decoder,
    prompts_BxP,
    prompt_lengths_B=None,
    *,
    ratio: int,
    max_new_tokens: int,
    blank_id: int,
    eos_id: int | None = None,
    pad_id: int = 0,
    split: bool | None = None,
) -> GenerateOutput:
    """One parallel pass over each prompt's canvas, argmax per slot, then collapse.

    Args:
      model: a model trained with a CTC objective of this `ratio` (objectives/ctc.py), whose
        targets see each other (full or prefix_full).
      prompts_BxP, prompt_lengths_B: right-padded `BOS source SEP` prompts and their lengths.
      ratio: canvas slots per source token (the objective's `canvas_ratio`).
      max_new_tokens: room after the prompt, EOS included; longer outputs are cut.
      blank_id: the blank (the objective's; data.vocab.MASK here).
      split: an encoder-decoder runs its encoder over the prompts alone and its decoder over
        `SEP canvas` alone, as it trains (None: wherever the model encodes its prompt); False
        runs both over [prompt, canvas] rows (the reference it is tested against).
    Returns:
      GenerateOutput(tokens_BxL, lengths_B) with L = P + max_new_tokens: prompt, the collapsed
      canvas, EOS (if eos_id is given), then pad_id.
    """
    graphdef, state, cfg = split_model(model)
    if cfg.mask.target_view != "all":
        raise ValueError(
            "ctc_generate needs a model whose canvas slots see each other (a mask kind with "
            f"target_view 'all'); this model's attention_mask_kind is {cfg.attention_mask_kind!r}"
        )
    prompts_BxP, prompt_lengths_B = check_prompts(cfg, prompts_BxP, prompt_lengths_B)
    if not is_int(ratio) or ratio < 1:
        raise ValueError(f"ratio must be an int >= 1, got {ratio!r}")
    if not is_int(max_new_tokens) or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an int >= 1, got {max_new_tokens!r}")
    if int(np.min(np.asarray(prompt_lengths_B))) < 3:
        raise ValueError("ctc_generate needs prompts `BOS source SEP` with a source token or more")
    blank_id = check_token_id(blank_id, "blank_id", cfg.vocab_size)
    pad_id = check_token_id(pad_id, "pad_id", cfg.vocab_size)
    eos_id = check_token_id(eos_id, "eos_id", cfg.vocab_size, optional=True)
    encodes = architecture_of(cfg).encodes_prompt
    if split and not encodes:
        raise ValueError("ctc_generate(split=True) needs an encoder-decoder")
    return _ctc_jit(
        graphdef, state, prompts_BxP, prompt_lengths_B, jnp.int32(-1 if eos_id is None else eos_id),
        ratio=ratio, max_new_tokens=max_new_tokens, blank_id=blank_id, pad_id=pad_id,
        split=encodes if split is None else split,
    )  # fmt: skip
