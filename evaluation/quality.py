"""Two evaluators: held-out loss (teacher-forced, honest, the random-token floor) and generation
quality of every decoder in the decoders table that applies to the variant.

Held-out loss is token-weighted, as training's eval lines are: the summed cross-entropy over the
scored tokens divided by their number. Its sem over examples is the ratio estimator's. A
translation task is also scored on detokenised text (BLEU, chrF: evaluation/translation.py).
What both share with the other evaluators (batches, row losses, prompts, per-row scores) is
evaluation/scoring.py.
Shape legend: B rows, T positions, V vocab, P prompt width.
"""

import dataclasses
import math
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from data.synthetic import OUTCOMES
from evaluation import decoders, forward, translation
from evaluation.report.schema import QUALITY, MetricSpec
from evaluation.run import LoadedRun, Measurement
from evaluation.scoring import (
    decode_and_score,
    eval_batches,
    prompts_of,
    row_losses,
    scored_decoders,
)
from evaluation.stats import mean_sem, ratio_mean_sem
from model import Decoder
from sections import EvalConfig

Log = Callable[[str], None]
PARALLEL_FAMILIES = ["non-AR", "exact-parallel", "diffusion"]

LOSS_METRICS = (
    MetricSpec(
        "loss_teacher_forced",
        "loss, teacher-forced",
        method="**Held-out loss** is token-weighted: the summed cross-entropy over every scored "
        "token divided by the number of scored tokens (the same definition as training's eval "
        "lines); its sem is the ratio estimator's over examples.",
    ),
    MetricSpec(
        "loss_honest",
        "loss, honest",
        method="**Honest loss**: the held-out next-token loss with position t computed from "
        "x[:t+1] alone (later tokens become padding, which every mask hides). It is what an AR "
        "decoder would see.",
    ),
    MetricSpec(
        "leak_gap",
        "honest − teacher-forced loss",
        hidden=True,
        verdicts=(
            {
                "rule": "loss_gap",
                "teacher_forced": "loss_teacher_forced",
                "honest": "loss_honest",
                "reference": {"mask_kind": "causal", "objective": "teacher_forcing"},
            },
        ),
    ),
    MetricSpec(
        "random_loss",
        "random-token loss (floor)",
        paired_with="random_floor",
        verdicts=({"rule": "random_floor", "floor": "random_floor"},),
        method="**Random-token floor**: loss on uniformly random symbols (the `random` task, "
        "same symbols and lengths). No honest model beats ln(num_symbols); a model not trained "
        "on random tokens may sit far above it, so only a loss *below* the floor says something "
        "(it proves leakage).",
    ),
    MetricSpec("random_floor", "ln(num_symbols)", hidden=True),
)
GENERATION_METRICS = (
    MetricSpec(
        "length_accuracy",
        "length accuracy",
        "percent",
        verdicts=(
            {
                "rule": "state",
                "text": "{variant}: the length head predicts the reference target length of "
                "{value} of held-out prompts.",
            },
        ),
    ),
    MetricSpec(
        "exact_match",
        "exact match",
        "percent",
        QUALITY,
        per_decoder=True,
        verdicts=({"rule": "exact_match", "against": "ar_cache", "families": PARALLEL_FAMILIES},),
        method="**Generation**: each decoder (listed below) continues each held-out prompt; the "
        "output is compared with the reference continuation (target tokens, then EOS). For a "
        "full-mask model, *AR (no cache, honest)* recomputes the prefix at each step (the "
        "function it was trained as); *AR (cache, naive)* is what code written for causal "
        "models runs: with a cache, keys never see later tokens, so it is a different function. "
        "Should a reference not fit in max_len + 1 tokens after the batch's longest prompt, it "
        "is cut to what fits.",
    ),
    MetricSpec("token_accuracy", "token accuracy", "percent", QUALITY, per_decoder=True),
    *translation.METRIC_SPECS,
    MetricSpec("correct", "correct", "percent", QUALITY, per_decoder=True),
    MetricSpec(
        "mixed",
        "mixed",
        "percent",
        QUALITY,
        per_decoder=True,
        verdicts=(
            {"rule": "multimodal", "priority": 1, "outcomes": list(OUTCOMES)},
            {"rule": "distillation"},
        ),
    ),
    MetricSpec("wrong", "wrong", "percent", QUALITY, per_decoder=True),
)


def losses(model: Decoder, task, num_examples: int, batch_size: int) -> dict[str, np.ndarray]:
    """Per-row summed losses "teacher_forced" and "honest" (from the prefix alone), and "count"."""
    out = {"teacher_forced": [], "honest": [], "count": []}
    for batch in eval_batches(task, num_examples, batch_size):
        args = (batch["inputs"], batch["lengths"], batch["prefix_lengths"])
        tf_sum, count = row_losses(forward.logits(model, *args), batch)
        honest_sum, _ = row_losses(forward.honest_logits(model, *args), batch)
        out["teacher_forced"].append(tf_sum)
        out["honest"].append(honest_sum)
        out["count"].append(count)
    return {name: np.concatenate(values) for name, values in out.items()}


def random_floor(model: Decoder, task, num_examples: int, batch_size: int) -> dict[str, float]:
    """Loss on uniform random symbols (the task's random-token control, fitted to the model),
    and the floor ln(num_symbols) no honest model beats."""
    task = task.random_control(model.cfg.max_len, model.cfg.vocab_size)
    sums, counts = [], []
    for b in eval_batches(task, num_examples, batch_size):
        loss_sum, count = row_losses(
            forward.logits(model, b["inputs"], b["lengths"], b["prefix_lengths"]), b
        )
        sums.append(loss_sum)
        counts.append(count)
    loss, sem = ratio_mean_sem(np.concatenate(sums), np.concatenate(counts))
    return {"loss": loss, "loss_sem": sem, "floor": math.log(task.num_symbols)}


def evaluate_loss(run: LoadedRun, settings: EvalConfig, log: Log) -> Measurement:
    """The loss evaluator; a CMLM or diffusion model is no next-token predictor, so it has none
    (the likelihood evaluator gives a diffusion model's bound)."""
    if not run.objective.next_token:
        return Measurement()
    log("    loss: teacher-forced and honest")
    per_row = losses(run.model, run.task, settings.num_examples, settings.batch_size)
    count = per_row["count"]
    metrics = {
        "loss_teacher_forced": ratio_mean_sem(per_row["teacher_forced"], count),
        "loss_honest": ratio_mean_sem(per_row["honest"], count),
        "leak_gap": ratio_mean_sem(per_row["honest"] - per_row["teacher_forced"], count),
    }
    log("    loss: random-token floor")
    floor = random_floor(run.model, run.task, settings.random_floor_examples, settings.batch_size)
    metrics["random_loss"] = (floor["loss"], floor["loss_sem"])
    metrics["random_floor"] = (floor["floor"], None)
    return Measurement(metrics=metrics)


def length_hits(model: Decoder, batches: list[dict]) -> np.ndarray:
    """Per row that ends with EOS, 1.0 where the length head's likeliest length is the
    reference target length (a window cut from a longer text has no length to find)."""
    hits = []
    for batch in batches:
        prompts = prompts_of(batch, int(batch["prefix_lengths"].max()), 1)
        logits_BxC = model.length_logits(
            jnp.asarray(prompts.prompts_BxP), jnp.asarray(prompts.prompt_lengths_B)
        )
        found_B = np.argmax(np.asarray(logits_BxC), axis=1) == prompts.target_lengths_B
        hits.append(found_B[prompts.ends()])
    return np.concatenate(hits).astype(float)


def evaluate_generation(run: LoadedRun, settings: EvalConfig, log: Log) -> Measurement:
    """The quality evaluator: every decoder that applies to the variant, on held-out prompts."""
    batches = list(eval_batches(run.task, settings.num_examples, settings.batch_size))
    # Plain text has no prompt to continue: only samples judged without a reference are scored.
    plain_text = int(batches[0]["prefix_lengths"].max()) <= 1
    measurement, scorers = Measurement(), {}
    if run.model.cfg.length_head and not plain_text:
        log("    quality: length head")
        measurement.metrics["length_accuracy"] = mean_sem(length_hits(run.model, batches))
    for spec, models in scored_decoders(run, settings, plain_text, log):
        if spec.statistics_needs:
            models = dataclasses.replace(models, second=_scorer(run, spec, scorers, log))
        log(f"    quality: {spec.label}")
        scores = decode_and_score(spec, models, batches, run.task, settings.num_samples)
        found = {
            "exact_match": mean_sem(scores.exact_match),
            "token_accuracy": mean_sem(scores.token_accuracy),
            **{outcome: mean_sem(rows) for outcome, rows in scores.outcomes.items()},
        }
        if spec.summarize is not None:
            found.update(spec.summarize(scores.statistics))
        if scores.texts:  # Scored on text too (BLEU and chrF).
            hypotheses = [t["hypothesis"] for t in scores.texts]
            references = [t["reference"] for t in scores.texts]
            scalars, signatures = translation.corpus_scores(hypotheses, references)
            found.update(scalars)
            measurement.signatures.update(signatures)
            measurement.sentences[f"bleu/{spec.id}"] = translation.sentence_stats(
                hypotheses, references
            )
        measurement.metrics.update({f"{name}/{spec.id}": value for name, value in found.items()})
        measurement.samples[spec.id] = scores.samples
    return measurement


def _scorer(run: LoadedRun, spec: decoders.DecoderSpec, loaded: dict, log: Log):
    """The model of the variant `spec.statistics_needs` names, loaded once per run (`loaded`);
    None where the experiment names none or it is not trained."""
    wanted = dataclasses.replace(spec, needs=spec.statistics_needs)
    variant = run.needed_variant(wanted)
    if variant and variant not in loaded:
        models = run.models_for(wanted, any_seed=True)  # A judge may have a seed of its own.
        loaded[variant] = models and models.second
        if models is None:
            log(f"    quality: {spec.statistics_needs}={variant!r} is not trained: not scored")
    return loaded.get(variant)
