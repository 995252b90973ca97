"""Two evaluators: held-out loss (teacher-forced, honest, the random-token floor) and generation
quality of every decoder in the decoders table that applies to the variant.

Held-out loss is token-weighted, as training's eval lines are: the summed cross-entropy over the
scored tokens divided by their number. Its sem over examples is the ratio estimator's. A
translation task is also scored on detokenised text (BLEU, chrF: evaluation/translation.py).
Shape legend: B rows, T positions, V vocab, P prompt width.
"""

import functools
import math
from collections.abc import Callable, Iterator
from typing import NamedTuple

import jax.numpy as jnp
import ml_collections
import numpy as np

import data
from data import vocab
from evaluation import decoders, forward, translation
from evaluation.run import LoadedRun, Measurement
from model import Decoder
from training.config import MASKED_OBJECTIVES

Log = Callable[[str], None]


def mean_sem(values) -> tuple[float, float]:
    """Mean and standard error of the mean (0.0 for a single value)."""
    values = np.asarray(values, np.float64)
    sem = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return float(values.mean()), float(sem)


def ratio_mean_sem(sums_N, counts_N) -> tuple[float, float]:
    """Σ sums / Σ counts, and its standard error over the N examples (the ratio estimator's)."""
    sums_N, counts_N = np.asarray(sums_N, np.float64), np.asarray(counts_N, np.float64)
    ratio = sums_N.sum() / max(counts_N.sum(), 1.0)
    N = len(sums_N)
    if N < 2:
        return float(ratio), 0.0
    residual_N = sums_N - ratio * counts_N
    sem = math.sqrt((residual_N**2).sum() / (N * (N - 1))) / max(counts_N.mean(), 1e-12)
    return float(ratio), float(sem)


def eval_batches(task, num_examples: int, batch_size: int, split: str = "eval") -> Iterator[dict]:
    """The first `num_examples` rows of `split`, as batches of at most `batch_size`."""
    for step in range(math.ceil(num_examples / batch_size)):
        size = min(batch_size, num_examples - step * batch_size)
        batch = task.batch(step, batch_size, split=split)
        yield batch if size == batch_size else {k: v[:size] for k, v in batch.items()}


def row_losses(logits_BxTxV: np.ndarray, batch: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Per row: summed cross-entropy (nats) over its loss_mask, and the number of scored tokens."""
    shifted_BxTxV = logits_BxTxV - logits_BxTxV.max(axis=-1, keepdims=True)
    log_z_BxT = np.log(np.exp(shifted_BxTxV).sum(axis=-1))
    target_BxT = np.take_along_axis(shifted_BxTxV, batch["targets"][..., None], axis=-1)[..., 0]
    mask_BxT = batch["loss_mask"]
    return ((log_z_BxT - target_BxT) * mask_BxT).sum(axis=1), mask_BxT.sum(axis=1)


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


def random_task(data_config: ml_collections.ConfigDict, max_len: int, vocab_size: int):
    """The `random` task with the data config's symbols and lengths, fitted to the model."""
    config = ml_collections.ConfigDict(data_config.to_dict())
    if config.task not in data.synthetic.TASKS:
        # Text: every ordinary id of the model's vocabulary (256 bytes, or the subword pieces).
        config.num_symbols = vocab_size - vocab.FIRST_SYMBOL
    config.tokenizer, config.vocab_size = "bytes", 0  # A synthetic task has its own symbols.
    config.task, config.seq_len, config.loss_on = "random", 0, "target"
    config.max_len = min(config.max_len, max_len - 1)
    config.min_len = min(config.min_len, config.max_len)
    return data.make_task(config)


def random_floor(
    model: Decoder, data_config: ml_collections.ConfigDict, num_examples: int, batch_size: int
) -> dict[str, float]:
    """Loss on uniform random symbols, and the floor ln(num_symbols) no honest model beats."""
    task = random_task(data_config, model.cfg.max_len, model.cfg.vocab_size)
    sums, counts = [], []
    for b in eval_batches(task, num_examples, batch_size):
        loss_sum, count = row_losses(
            forward.logits(model, b["inputs"], b["lengths"], b["prefix_lengths"]), b
        )
        sums.append(loss_sum)
        counts.append(count)
    loss, sem = ratio_mean_sem(np.concatenate(sums), np.concatenate(counts))
    return {"loss": loss, "loss_sem": sem, "floor": math.log(task.num_symbols)}


def evaluate_loss(run: LoadedRun, settings: ml_collections.ConfigDict, log: Log) -> Measurement:
    """The loss evaluator; a CMLM model is no next-token predictor, so it has none."""
    if run.objective in MASKED_OBJECTIVES:
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
    floor = random_floor(
        run.model, run.config.data, settings.random_floor_examples, settings.batch_size
    )
    metrics["random_loss"] = (floor["loss"], floor["loss_sem"])
    metrics["random_floor"] = (floor["floor"], None)
    return Measurement(metrics=metrics)


def prompts_of(batch: dict[str, np.ndarray], P: int, max_new_tokens: int) -> decoders.Prompts:
    """The batch's prompts, right-padded to width P, with each row's reference target length."""
    prefix_B, lengths_B = batch["prefix_lengths"], batch["lengths"]
    prompts_BxP = np.where(np.arange(P) < prefix_B[:, None], batch["inputs"][:, :P], vocab.PAD)
    return decoders.Prompts(
        prompts_BxP.astype(np.int32),
        prefix_B.astype(np.int32),
        (lengths_B - prefix_B).astype(np.int32),  # The target tokens; EOS is the last position.
        max_new_tokens,
    )


def references(batch: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Each row's reference continuation: its target tokens, then EOS."""
    prefix_B, lengths_B = batch["prefix_lengths"], batch["lengths"]
    return [batch["targets"][b, prefix_B[b] - 1 : lengths_B[b]] for b in range(len(prefix_B))]


def score(generated: list[np.ndarray], refs: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Per-row exact match (0/1) and token accuracy against the reference continuation."""
    exact, accuracy = [], []
    for gen, ref in zip(generated, refs, strict=True):
        padded = np.full(len(ref), -1)
        padded[: min(len(gen), len(ref))] = gen[: len(ref)]
        exact.append(float(len(gen) == len(ref) and np.array_equal(gen, ref)))
        accuracy.append(float(np.mean(padded == ref)))
    return np.array(exact), np.array(accuracy)


class Scores(NamedTuple):
    """Per-row scores of one decoder over the eval batches."""

    exact_match: np.ndarray
    token_accuracy: np.ndarray
    outcomes: dict[str, np.ndarray]  # Multi-modal tasks: "correct", "mixed", "wrong" (0/1).
    samples: list[str] | list[dict[str, str]]  # Translation: {source, reference, hypothesis}.
    # Exact-parallel decoders, per row: "equals_greedy" (0/1: the same tokens as "AR (cache)"),
    # "generated", "target_passes", "drafted" and "accepted" tokens.
    parallel: dict[str, np.ndarray]
    # Translation tasks: every row's {source, reference, hypothesis} text; else empty.
    texts: list[dict[str, str]]


def decode_and_score(
    spec: decoders.DecoderSpec,
    models: decoders.Models,
    batches: list[dict],
    task,
    num_samples: int,
) -> Scores:
    """Per-row exact match and token accuracy of one decoder over the batches, the outcome of
    each row on a multi-modal task (`task.outcome`), and sample lines; on a translation task,
    every row as text (its reference whole), and samples as text.

    Every batch uses one prompt width and buffer, so each decoder compiles once. A row ends at
    most at index max_len (the last token is never fed back); a reference that does not fit
    after the widest prompt is cut to what fits (see the report's notes).
    """
    P = max(int(b["prefix_lengths"].max()) for b in batches)
    longest = max(len(r) for b in batches for r in references(b))
    max_new = min(longest, models.model.cfg.max_len + 1 - P)
    as_text = translation.is_translation(task)
    exact, accuracy, outcomes, samples, parallel, texts = [], [], [], [], [], []
    for batch in batches:
        prompts = prompts_of(batch, P, max_new)
        out = spec.decode(models, prompts)
        generated = _continuations(out, prompts)
        if hasattr(out, "target_passes_B"):  # model.ParallelOutput: its work, and a greedy check.
            parallel.append(_parallel_stats(out, generated, models, prompts))
        prompt_rows = [prompts.prompts_BxP[b, :p] for b, p in enumerate(prompts.prompt_lengths_B)]
        whole_refs = references(batch)
        refs = [r[:max_new] for r in whole_refs]
        e, a = score(generated, refs)
        exact.append(e)
        accuracy.append(a)
        outcomes += [task.outcome(p[1:-1], g) for p, g in zip(prompt_rows, generated, strict=True)]
        if as_text:
            rows = zip(prompt_rows, whole_refs, generated, strict=True)
            texts += [translation.row_texts(task, *row) for row in rows]
        else:
            for b in range(min(num_samples - len(samples), len(generated))):
                mark = outcomes[-len(generated) + b] or ("✓" if e[b] else "✗")
                samples.append(_sample_line(task, prompt_rows[b], generated[b], refs[b], mark))
    by_outcome = {}
    if outcomes and outcomes[0] is not None:
        labels = np.array(outcomes)
        by_outcome = {name: (labels == name).astype(float) for name in data.synthetic.OUTCOMES}
    parallel = {k: np.concatenate([p[k] for p in parallel]) for k in (parallel or [{}])[0]}
    samples = texts[:num_samples] if as_text else samples
    exact, accuracy = np.concatenate(exact), np.concatenate(accuracy)
    return Scores(exact, accuracy, by_outcome, samples, parallel, texts)


def _sample_line(task, prompt, generated, reference, mark: str) -> str:
    """A sample in the task's symbols: prompt → continuation (reference) and its mark."""
    show = functools.partial(vocab.render, num_symbols=task.num_symbols)
    return f"{show(prompt)}  →  {show(generated)}   (reference {show(reference)}) {mark}"


def _continuations(out, prompts: decoders.Prompts) -> list[np.ndarray]:
    """Each row's generated tokens (its EOS included)."""
    tokens_BxL, lengths_B = np.asarray(out.tokens_BxL), np.asarray(out.lengths_B)
    prefix_B = prompts.prompt_lengths_B
    return [tokens_BxL[b, prefix_B[b] : lengths_B[b]] for b in range(len(prefix_B))]


def _parallel_stats(out, generated, models: decoders.Models, prompts) -> dict[str, np.ndarray]:
    """An exact-parallel decoder's work per row, and whether it gave greedy AR's tokens."""
    greedy = _continuations(decoders.DECODERS["AR (cache)"].decode(models, prompts), prompts)
    same = [float(np.array_equal(g, r)) for g, r in zip(generated, greedy, strict=True)]
    return {
        "equals_greedy": np.array(same),
        "generated": np.array([len(g) for g in generated], np.float64),
        "target_passes": np.asarray(out.target_passes_B, np.float64),
        "drafted": np.asarray(out.drafted_B, np.float64),
        "accepted": np.asarray(out.accepted_B, np.float64),
    }


def length_hits(model: Decoder, batches: list[dict]) -> np.ndarray:
    """Per row, 1.0 where the length head's likeliest length is the reference target length."""
    hits = []
    for batch in batches:
        prompts = prompts_of(batch, int(batch["prefix_lengths"].max()), 1)
        logits_BxC = model.length_logits(
            jnp.asarray(prompts.prompts_BxP), jnp.asarray(prompts.prompt_lengths_B)
        )
        hits.append(np.argmax(np.asarray(logits_BxC), axis=1) == prompts.target_lengths_B)
    return np.concatenate(hits).astype(float)


def evaluate_generation(
    run: LoadedRun, settings: ml_collections.ConfigDict, log: Log
) -> Measurement:
    """The quality evaluator: every decoder that applies to the variant, on held-out prompts."""
    batches = list(eval_batches(run.task, settings.num_examples, settings.batch_size))
    if int(batches[0]["prefix_lengths"].max()) <= 1:
        return Measurement()  # Plain text has no prompt to continue.
    measurement = Measurement()
    if run.model.cfg.length_head:
        log("    quality: length head")
        measurement.metrics["length_accuracy"] = mean_sem(length_hits(run.model, batches))
    for spec in decoders.scored_on(run.mask_kind, run.objective, settings.decoders):
        if spec.needs and not run.needed_variant(spec):
            continue  # The experiment names no such variant: nothing to report.
        if spec.needs_length_head and not run.model.cfg.length_head:
            continue
        models = run.models_for(spec)
        if models is None:
            log(f"    quality: {spec.name} skipped: its {spec.needs} variant is not trained")
            continue
        log(f"    quality: {spec.name}")
        scores = decode_and_score(spec, models, batches, run.task, settings.num_samples)
        measurement.metrics[f"exact_match/{spec.name}"] = mean_sem(scores.exact_match)
        measurement.metrics[f"token_accuracy/{spec.name}"] = mean_sem(scores.token_accuracy)
        for outcome, rows in scores.outcomes.items():
            measurement.metrics[f"{outcome}/{spec.name}"] = mean_sem(rows)
        if scores.parallel:
            work = scores.parallel
            measurement.metrics[f"equals_greedy/{spec.name}"] = mean_sem(work["equals_greedy"])
            measurement.metrics[f"target_passes_per_token/{spec.name}"] = ratio_mean_sem(
                work["target_passes"], work["generated"]
            )
            if work["drafted"].sum() > 0:
                measurement.metrics[f"acceptance/{spec.name}"] = ratio_mean_sem(
                    work["accepted"], work["drafted"]
                )
        if scores.texts:  # A translation task: BLEU and chrF on the detokenised text.
            scalars, signatures = translation.decoder_scores(spec.name, scores.texts)
            measurement.metrics.update(scalars)
            measurement.signatures.update(signatures)
        measurement.samples[spec.name] = scores.samples
    return measurement
