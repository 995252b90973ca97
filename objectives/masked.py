"""The non-AR objectives that fill masked target tokens (decoded by mask-predict).

masked: CMLM (mask-predict). `model.nar_masks.cmlm_mask` hides k ~ U{1..m} target tokens, and a
  model whose targets see each other (mask prefix_full or full) predicts them from both sides.
glancing: GLAT (Qian et al. 2021). A first pass (no gradient) predicts every target token from
  MASKs; `model.nar_masks.glancing_mask` reveals glancing_ratio x its errors reference tokens,
  and a second pass learns the rest. It trains one-pass (K=1) decoding. The ratio may anneal
  linearly over the run (train.glancing_ratio_end: GLAT's 0.5 -> 0.3), and an encoder-decoder
  may read the copied source where the target is masked (model.source_copy_id), as GLAT does.
  As the authors' code (FLC777/GLAT): its anneal spans the whole run, start_p 0.5 less
  minus_p 0.2 x (update / total_up), total_up = --max-update = 300k
  (glat_plugins/tasks/translation_lev_modified.py `train_step`; later GLAT-family recipes,
  NAST's, anneal over the first 200k of ~300k updates), and it reveals floor(ratio x errors)
  reference tokens at uniform positions (glat_plugins/models/glat.py `forward`), and both
  passes read one encoder output (glat.py's `encoder_out`; here the training step's
  model/encoded_source.py).
"""

import functools

import jax
import jax.numpy as jnp

from data import vocab
from model import Decoder, cmlm_mask, glancing_mask
from objectives.base import Batch, Objective, Setting, register_objective
from objectives.common import LABEL_SMOOTHING, LENGTH_LOSS_WEIGHT, masked_cross_entropy

GLANCING_RATIO = Setting("glancing_ratio", lambda v: 0 <= v <= 1, "in [0, 1]", "ratio")
GLANCING_RATIO_END = Setting(
    "glancing_ratio_end",
    lambda v: v == -1 or 0 <= v <= 1,
    "in [0, 1], or -1 (glancing_ratio throughout)",
    "ratio_end",
)
BOTH_SIDES = "it predicts masked tokens from both sides"


def masked_loss(
    model: Decoder,
    batch: Batch,
    rng: jax.Array,
    dropout_rng: jax.Array | None,
    smoothing: jax.Array | float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """CMLM: CE on the target tokens that `model.nar_masks.cmlm_mask` replaced by MASK."""
    tokens_BxT, targets_BxT, loss_mask_BxT = cmlm_mask(
        batch["inputs"], batch["prefix_lengths"], batch["lengths"], rng, mask_id=vocab.MASK
    )
    logits_BxTxV, _ = model(
        tokens_BxT,
        lengths_B=batch["lengths"],
        prefix_lengths_B=batch["prefix_lengths"],
        dropout_rng=dropout_rng,
    )
    return masked_cross_entropy(
        logits_BxTxV, targets_BxT, loss_mask_BxT.astype(jnp.float32), smoothing
    )


def glancing_loss(
    model: Decoder,
    batch: Batch,
    rng: jax.Array,
    dropout_rng: jax.Array | None,
    ratio: jax.Array | float = 0.5,
    smoothing: jax.Array | float = 0.0,
    ratio_end: jax.Array | float = -1.0,
    progress: jax.Array | float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """GLAT: CE on the target tokens still masked after glancing at the first pass's errors;
    the ratio goes linearly from `ratio` to `ratio_end` (>= 0) as `progress` goes 0 -> 1."""
    ratio = jnp.where(ratio_end >= 0, ratio + (ratio_end - ratio) * progress, ratio)
    call = functools.partial(
        model, lengths_B=batch["lengths"], prefix_lengths_B=batch["prefix_lengths"]
    )
    T = batch["inputs"].shape[1]
    cols_1xT = jnp.arange(T)[None, :]
    span_BxT = (cols_1xT >= batch["prefix_lengths"][:, None]) & (
        cols_1xT < batch["lengths"][:, None]
    )
    first_logits_BxTxV, _ = call(jnp.where(span_BxT, vocab.MASK, batch["inputs"]))
    predicted_BxT = jnp.argmax(jax.lax.stop_gradient(first_logits_BxTxV), axis=-1)
    tokens_BxT, loss_mask_BxT = glancing_mask(
        batch["inputs"], batch["prefix_lengths"], batch["lengths"], predicted_BxT, ratio, rng,
        mask_id=vocab.MASK,
    )  # fmt: skip
    logits_BxTxV, _ = call(tokens_BxT, dropout_rng=dropout_rng)
    return masked_cross_entropy(logits_BxTxV, batch["inputs"], loss_mask_BxT, smoothing)


def glancing_train_flops(arch, cfg, batch: dict) -> float:
    """A glancing step's FLOPs as run: the training pass (forward and backward) and the first
    pass, a forward of the decoder without gradient (an encoder-decoder's source is encoded
    once for both, model/encoded_source.py)."""
    return arch.train_flops(cfg, batch) + arch.decoder_pass_flops(cfg, batch)


# The held-out loss of both is CMLM's masked CE: their model is no next-token predictor.
MASKED = register_objective(
    Objective(
        "masked",
        "CMLM: CE on a random number of target tokens replaced by MASK",
        "masked",
        masked_loss,
        held_out_loss=masked_loss,
        settings=(LABEL_SMOOTHING, LENGTH_LOSS_WEIGHT),
        trains_length_head=True,
        target_views=("all",),
        mask_reason=BOTH_SIDES,
    )
)
GLANCING = register_objective(
    Objective(
        "glancing",
        "GLAT: a first pass from MASKs, then CE on the tokens left masked after revealing "
        "glancing_ratio x its errors",
        "masked",
        glancing_loss,
        held_out_loss=masked_loss,
        settings=(LABEL_SMOOTHING, GLANCING_RATIO, GLANCING_RATIO_END, LENGTH_LOSS_WEIGHT),
        trains_length_head=True,
        takes_progress=True,
        train_flops=glancing_train_flops,
        target_views=("all",),
        mask_reason=BOTH_SIDES,
    )
)
