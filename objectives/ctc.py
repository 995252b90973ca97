"""CTC (Libovický & Helcl 2018; Saharia et al. 2020; Gu & Kong 2021): the model writes a canvas
of `canvas_ratio` x S slots after its prompt (S source tokens, copied uniformly onto the canvas:
model/ctc.py), a token or a blank (MASK) per slot, and the loss marginalises over every canvas
that collapses to the reference (repeats merged, then blanks dropped), with `optax.ctc_loss`.

It needs no length head: the output's length is what the collapse leaves. Decoded in one pass by
argmax then collapse (model.ctc.ctc_generate; the decoders table's `ctc` row). Deviations from
the references (gu-etal fairseq `nat_ctc_loss`, Libovický's `ctc_decoder`): the canvas copies
source tokens, not encoder states; the loss is per target token (summed over rows, divided by
the rows' target tokens), not per sentence.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from data import vocab
from model import Decoder
from model.ctc import canvas_logits, canvas_rows, canvas_slots
from objectives.base import Batch, Objective, register_objective

RATIO = 2  # Canvas slots per source token (Gu & Kong 2021 use 2 or 3).


def _canvas_row_width(cfg, row_prompt_width: int, prompt_width: int, ratio: int) -> int:
    """The width of the rows `ctc_loss` runs: what precedes the canvas in a row (an
    encoder-decoder's split rows: their SEP alone; else the whole prompt) and the widest
    prompt's canvas, within the model's positions."""
    return min(cfg.max_len, row_prompt_width + canvas_slots(prompt_width, ratio))


def ctc_loss(
    model: Decoder,
    batch: Batch,
    rng: jax.Array,
    dropout_rng: jax.Array | None,
    ratio: int = RATIO,
) -> tuple[jax.Array, jax.Array]:
    """(CTC's negative log-likelihood per target token, the number of target tokens).

    The targets are each row's target tokens (EOS excluded); the canvas row is as wide as the
    widest prompt and its canvas, within `model.cfg.max_len` positions, and a canvas that does
    not fit is cut (its rows then cost more, as fewer alignments remain: the plan refuses a
    max_len too short for the data). Split rows (an encoder-decoder's, `model.for_batch`) hold
    their SEP alone before the canvas; the source comes from `model.prompt_source`.
    """
    del rng
    inputs_BxT, prefix_B, lengths_B = batch["inputs"], batch["prefix_lengths"], batch["lengths"]
    source = model.prompt_source(inputs_BxT, prefix_B)
    width = _canvas_row_width(model.cfg, source.width, source.prompts_BxP.shape[1], ratio)
    rows_BxW, canvas_len_B = canvas_rows(
        inputs_BxT, prefix_B, ratio, width, vocab.PAD, (source.prompts_BxP, source.lengths_B)
    )
    logits_BxKxV, paddings_BxK = canvas_logits(model, rows_BxW, prefix_B, canvas_len_B, dropout_rng)
    T = inputs_BxT.shape[1]
    target_len_B = lengths_B - prefix_B
    offsets_1xT = jnp.arange(T)[None, :]
    labels_BxT = jnp.take_along_axis(
        inputs_BxT, jnp.minimum(prefix_B[:, None] + offsets_1xT, T - 1), axis=1
    )
    label_paddings_BxT = (offsets_1xT >= target_len_B[:, None]).astype(jnp.float32)
    nll_B = optax.ctc_loss(
        logits_BxKxV.astype(jnp.float32), paddings_BxK, labels_BxT, label_paddings_BxT,
        blank_id=vocab.MASK,
    )  # fmt: skip
    count = target_len_B.sum().astype(jnp.float32)
    return nll_B.sum() / jnp.maximum(count, 1.0), count


def ctc_train_flops(arch, cfg, batch: dict, ratio: int = RATIO) -> float:
    """A CTC step's FLOPs as run: the decoder over the canvas rows `ctc_loss` builds, not over
    the batch's target width (the encoder's own width is the batch's)."""
    B, T = batch["inputs"].shape
    row_prompt, prompt = (1, batch["source"].shape[1]) if "source" in batch else (T, T)
    width = _canvas_row_width(cfg, row_prompt, prompt, ratio)
    return arch.train_flops(cfg, {**batch, "inputs": np.zeros((B, width), np.int32)})


CTC = register_objective(
    Objective(
        "ctc",
        "CTC: the negative log-likelihood of the reference summed over every canvas of tokens "
        "and blanks that collapses to it",
        "alignment",
        functools.partial(ctc_loss, ratio=RATIO),
        held_out_loss=functools.partial(ctc_loss, ratio=RATIO),
        target_views=("all",),
        mask_reason="its canvas slots are predicted together, each seeing every other",
        canvas_ratio=RATIO,
        train_flops=ctc_train_flops,
        no_label_smoothing="its loss is a sum over alignments, which smoothing does not define",
    )
)
