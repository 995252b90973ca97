"""Masked diffusion (MDLM; BD3-LM under block_causal): each target token is MASK with
probability t ~ U(0, 1] (per block under block_causal), and the loss is the negative ELBO per
target token, an upper bound on the NLL (model/diffusion.py). It scores the tokens AR scores:
each row whole, a window without EOS to its last token (its model has seq_len + 1 positions);
a row's EOS by the length head, or, in a block model, as the last token of its span."""

import functools

import jax

from data import vocab
from model import Decoder
from model.diffusion import negative_elbo, scores_eos_as_token, train_flops, whole_sequence
from objectives.base import Batch, Objective, Setting, register_objective
from objectives.common import LENGTH_LOSS_WEIGHT

# Training times are drawn from (diffusion_eps, 1], away from t = 0, where the ELBO weight 1/t
# makes the loss noisy (MDLM's 1e-3). The held-out loss uses 0.
DIFFUSION_EPS = Setting("diffusion_eps", lambda v: 0 <= v < 1, "in [0, 1)", "eps")


def diffusion_loss(
    model: Decoder,
    batch: Batch,
    rng: jax.Array,
    dropout_rng: jax.Array | None,
    eps: jax.Array | float = 0.0,
    counts: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Masked diffusion: the negative ELBO per target token (model/diffusion.py), times in
    (eps, 1]; the held-out loss masks by count (`counts`), an unbiased and steadier estimate.
    It reads each row whole (`whole_sequence`): the tokens AR scores, but a final EOS, which
    the length head scores (a block model's span takes its EOS: `scores_eos_as_token`)."""
    tokens_BxS, span_ends_B, _ = whole_sequence(
        batch["inputs"], batch["targets"], batch["lengths"], vocab.EOS,
        eos_in_span=scores_eos_as_token(model.cfg),
    )  # fmt: skip
    return negative_elbo(
        model, tokens_BxS, batch["prefix_lengths"], span_ends_B, rng,
        mask_id=vocab.MASK, eps=eps, counts=counts, dropout_rng=dropout_rng,
    )  # fmt: skip


DIFFUSION = register_objective(
    Objective(
        "diffusion",
        "masked diffusion: the negative ELBO of the targets masked with probability t",
        "diffusion",
        diffusion_loss,
        held_out_loss=functools.partial(diffusion_loss, counts=True),
        settings=(DIFFUSION_EPS, LENGTH_LOSS_WEIGHT),
        trains_length_head=True,
        target_views=("all", "block"),
        mask_reason="it denoises target tokens from both sides within a block",
        reads_whole_sequence=True,
        train_flops=train_flops,
        no_label_smoothing="its loss is a bound on the likelihood only without smoothing",
    )
)
