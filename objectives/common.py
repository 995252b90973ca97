"""What several objectives share: the masked cross-entropy, teacher forcing (every objective's
default held-out loss), the length head's loss, and the settings more than one loss takes.

Shape legend: B batch rows, T positions, V vocab. A batch is the dict `data` returns
(inputs_BxT, targets_BxT, loss_mask_BxT, lengths_B, prefix_lengths_B), as jax arrays.
"""

import jax
import jax.numpy as jnp
import optax

from data import vocab
from model import Decoder
from model.diffusion import ends_with_eos
from objectives.base import Batch, Setting

LABEL_SMOOTHING = Setting("label_smoothing", lambda v: 0 <= v < 1, "in [0, 1)", "smoothing")
LENGTH_LOSS_WEIGHT = Setting("length_loss_weight", lambda v: v >= 0, ">= 0")


def masked_cross_entropy(
    logits_BxTxV: jax.Array,
    targets_BxT: jax.Array,
    loss_mask_BxT: jax.Array,
    smoothing: jax.Array | float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """(mean CE over the masked positions, number of masked positions).

    With `smoothing` = eps the target is (1 - eps) one-hot + eps uniform over the vocabulary
    (Szegedy et al. 2016; fairseq's label_smoothed_cross_entropy): CE = (1 - eps) NLL +
    eps mean_v(-log p_v), computed without a one-hot.
    """
    logits_BxTxV = logits_BxTxV.astype(jnp.float32)
    log_z_BxT = jax.nn.logsumexp(logits_BxTxV, axis=-1)
    target_logit_BxT = jnp.take_along_axis(logits_BxTxV, targets_BxT[..., None], axis=-1)[..., 0]
    nll_BxT = log_z_BxT - target_logit_BxT
    uniform_BxT = log_z_BxT - logits_BxTxV.mean(axis=-1)
    ce_BxT = (1.0 - smoothing) * nll_BxT + smoothing * uniform_BxT
    count = loss_mask_BxT.sum()
    return (ce_BxT * loss_mask_BxT).sum() / jnp.maximum(count, 1.0), count


def teacher_forcing_loss(
    model: Decoder,
    batch: Batch,
    rng: jax.Array,
    dropout_rng: jax.Array | None,
    smoothing: jax.Array | float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """Next-token CE with the true prefix at every position (one parallel pass)."""
    del rng
    logits_BxTxV, _ = model(
        batch["inputs"],
        lengths_B=batch["lengths"],
        prefix_lengths_B=batch["prefix_lengths"],
        dropout_rng=dropout_rng,
    )
    return masked_cross_entropy(logits_BxTxV, batch["targets"], batch["loss_mask"], smoothing)


def length_loss(model: Decoder, batch: Batch) -> jax.Array:
    """Mean CE of the length head on each row's target length (EOS excluded), from its prompt,
    over the rows that end with EOS: a window cut from a longer text has no length to learn."""
    # The whole row goes in; keys past each prompt are padding to the length head's pass.
    logits_BxC = model.length_logits(batch["inputs"], batch["prefix_lengths"])
    target_lengths_B = batch["lengths"] - batch["prefix_lengths"]
    ends_B = ends_with_eos(batch["targets"], batch["lengths"], vocab.EOS).astype(jnp.float32)
    nats_B = optax.softmax_cross_entropy_with_integer_labels(logits_BxC, target_lengths_B)
    return (nats_B * ends_B).sum() / jnp.maximum(ends_B.sum(), 1.0)


def with_length_loss(loss_fn, weight):
    """`loss_fn` plus weight x the length head's loss, for a model that has one."""

    def loss(model, batch, rng, dropout_rng):
        value, count = loss_fn(model, batch, rng, dropout_rng)
        if model.cfg.length_head:
            value = value + weight * length_loss(model, batch)
        return value, count

    return loss
