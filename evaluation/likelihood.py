"""The likelihood evaluator: bits per token of held-out rows, comparable across model families.

A row is scored on its target tokens and its end, as AR training scores it (targets
[prefix_len - 1, length): the target tokens, then EOS):
- AR models (the next-token objectives) give the exact negative log-likelihood: from one
  teacher-forced pass where the mask is causal or prefix (their logits are the honest ones),
  else from honest logits (position t computed from x[:t+1] alone), which is the exact
  likelihood of that model's honest AR decoder.
- Diffusion models give the negative ELBO (model/diffusion.py), an upper bound on the NLL,
  estimated with `eval.likelihood_t_samples` times per row (and per block, under block_causal),
  stratified over (0, 1], the masks drawn by count. The target tokens are scored given their
  number; a length head's -log p(number | prompt) then scores the end, so the figure bounds the
  same quantity as AR's, on the same tokens (`model.diffusion.whole_sequence`): a row without
  EOS (a window cut from a longer text) is scored to its last token, and has no end to score.
  A block model (block_causal) scores its EOS as the last token of its span instead, as BD3-LM
  (`model.diffusion.scores_eos_as_token`). Without either the figure is given the length and
  covers the target tokens alone (`likelihood_given_length` is 1): it is not the same quantity.
- CMLM models (masked, glancing) define no likelihood here: no metric.

Bits are nats / ln 2, summed over the examples and divided by the scored tokens; the sem is over
sequences (the ratio estimator's), and includes the Monte Carlo noise of the bound. On
byte-level text a token is a byte, so the figure is bits per byte. Each row's [nats, tokens] is
kept (results.json's `sentences`, per seed), since every variant scores the same rows: the
ordering verdict differences two variants row by row (report/likelihood_rules.py).
Shape legend: B rows, T positions, N time samples.
"""

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from data import vocab
from evaluation import forward
from evaluation.report.schema import MetricSpec
from evaluation.run import LoadedRun, Measurement
from evaluation.scoring import eval_batches, row_losses
from evaluation.stats import ratio_mean_sem
from model import Decoder
from model.diffusion import elbo_samples, scores_eos_as_token, whole_sequence
from sections import EvalConfig

Log = Callable[[str], None]
TABLE = "Likelihood (bits per token: exact for AR, an upper bound for diffusion)"

METRICS = (
    MetricSpec(
        "likelihood_bits",
        "bits per token",
        table=TABLE,
        verdicts=(
            {"rule": "likelihood_order", "given_length": "likelihood_given_length", "lead": True},
        ),
        method="**Likelihood** in bits per token (bits per byte on byte-level text), over each "
        "held-out row's target tokens and its end (EOS); the sem is over sequences. AR models: "
        "the exact negative log-likelihood (teacher-forced under a causal or prefix mask, "
        "else from honest logits, where position t sees x[:t+1] alone). Diffusion models: the "
        "negative ELBO, an upper bound on it, estimated with `eval.likelihood_t_samples` "
        "stratified times per row (per block under block_causal) and "
        "the masks drawn by count; a length head's -log p(length | prompt) scores the end, or, "
        "in a block model (BD3-LM), the EOS is the last token of the span. Without either the "
        "bound is given the length and covers the target tokens alone, so it is not "
        "comparable with AR's. CMLM models have no likelihood here. "
        "Every variant scores the same rows: the ordering verdict judges a pair out of order by "
        "its difference paired over the rows (seed for seed; else the two sems as independent, "
        "an upper bound), within noise where it is at most 2 sem.",
    ),
    MetricSpec("likelihood_given_length", "given the length (1) or not (0)", hidden=True),
)


def ar_nats(model: Decoder, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the exact NLL (nats) of its target tokens and EOS, and their number."""
    args = (batch["inputs"], batch["lengths"], batch["prefix_lengths"])
    # Under an exact-cache mask the teacher-forced logits are the honest ones.
    exact = model.cfg.mask.exact_cache
    logits_BxTxV = forward.logits(model, *args) if exact else forward.honest_logits(model, *args)
    cols_1xT = np.arange(batch["inputs"].shape[1])[None, :]
    scored_BxT = (cols_1xT >= batch["prefix_lengths"][:, None] - 1) & (
        cols_1xT < batch["lengths"][:, None]
    )
    return row_losses(logits_BxTxV, {**batch, "loss_mask": scored_BxT.astype(np.float32)})


@functools.partial(jax.jit, static_argnames=("graphdef", "num_samples"))
def _bound(
    graphdef, state, inputs_BxT, targets_BxT, prefix_lengths_B, lengths_B, rng, num_samples
):  # fmt: skip
    """(each row's estimated negative ELBO plus its length term, and the tokens scored): the
    tokens AR scores (`whole_sequence`), the end of a row that ends with EOS by the length
    head, or in a block model's span."""
    model = nnx.merge(graphdef, state)
    tokens_BxS, span_ends_B, with_eos_B = whole_sequence(
        inputs_BxT, targets_BxT, lengths_B, vocab.EOS, eos_in_span=scores_eos_as_token(model.cfg)
    )
    nats_NxB, tokens_B = elbo_samples(
        model, tokens_BxS, prefix_lengths_B, span_ends_B, rng,
        num_samples=num_samples, mask_id=vocab.MASK,
    )  # fmt: skip
    nats_B = nats_NxB.mean(axis=0)
    if not model.cfg.length_head:
        return nats_B, tokens_B
    logits_BxC = model.length_logits(inputs_BxT, prefix_lengths_B)
    length_nats_B = optax.softmax_cross_entropy_with_integer_labels(
        logits_BxC, lengths_B - prefix_lengths_B
    )
    return nats_B + with_eos_B * length_nats_B, tokens_B + with_eos_B


def diffusion_nats(
    model: Decoder, batch: dict[str, np.ndarray], rng: jax.Array, num_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the estimated negative ELBO (nats; plus -log p(length | prompt) with a length
    head, for a row ending with EOS), and the tokens it scores (the target tokens; one more for
    the length): those AR scores, with a length head."""
    graphdef, state = nnx.split(model)
    nats_B, tokens_B = _bound(
        graphdef,
        state,
        *(
            jnp.asarray(batch[k], jnp.int32)
            for k in ("inputs", "targets", "prefix_lengths", "lengths")
        ),
        rng,
        num_samples,
    )
    return np.asarray(nats_B, np.float64), np.asarray(tokens_B, np.float64)


def has_likelihood(objective) -> bool:
    """Whether a model trained with `objective` has a likelihood here (AR, or a bound)."""
    return objective.next_token or objective.model_kind == "diffusion"


def row_nats(
    model: Decoder, objective, batches, seed: int, t_samples: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of `batches`: its nats (the exact NLL of an AR model, the ELBO bound of a
    diffusion one, `t_samples` times a row keyed by `seed` and the batch) and scored tokens."""
    sums, counts = [], []
    for step, batch in enumerate(batches):
        if objective.model_kind == "diffusion":
            rng = jax.random.fold_in(jax.random.key(seed), step)
            nats_B, tokens_B = diffusion_nats(model, batch, rng, t_samples)
        else:
            nats_B, tokens_B = ar_nats(model, batch)
        sums.append(np.asarray(nats_B, np.float64))
        counts.append(np.asarray(tokens_B, np.float64))
    return np.concatenate(sums), np.concatenate(counts)


def bits_per_token(nats_N: np.ndarray, tokens_N: np.ndarray) -> tuple[float, float]:
    """(bits per token over the rows, its sem: the ratio estimator's over rows)."""
    return ratio_mean_sem(nats_N / math.log(2.0), tokens_N)


def evaluate(run: LoadedRun, settings: EvalConfig, log: Log) -> Measurement:
    """The likelihood evaluator; a CMLM model has none, so it gives no metric."""
    if not has_likelihood(run.objective):
        kind = run.objective.model_kind
        return Measurement(skipped=f"a {kind} model ({run.objective.id}) has no likelihood here")
    given_length = False
    if run.objective.model_kind == "diffusion":
        log(f"    likelihood: ELBO bound, {settings.likelihood_t_samples} stratified times per row")
        cfg = run.model.cfg
        given_length = not (cfg.length_head or scores_eos_as_token(cfg))
    else:
        log("    likelihood: exact NLL")
    batches = eval_batches(run.task, settings.num_examples, settings.batch_size)
    nats_N, tokens_N = row_nats(
        run.model, run.objective, batches, run.seed, settings.likelihood_t_samples
    )
    return Measurement(
        metrics={
            "likelihood_bits": bits_per_token(nats_N, tokens_N),
            "likelihood_given_length": (float(given_length), None),
        },
        # Each row's [nats, tokens], in the order of the eval rows: a paired ordering verdict.
        sentences={"likelihood_bits": np.stack([nats_N, tokens_N], axis=1).tolist()},
    )
