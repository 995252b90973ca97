"""Scoring held-out rows, shared by the evaluators: the eval split's first rows as batches, each
row's summed loss, the prompts and reference continuations a decoder is scored on, a decoder's
per-row scores (exact match, token accuracy, a multi-modal task's outcomes, text for BLEU), and
the decoders the quality evaluator scores on a variant (which the latency evaluator times).

Used by the quality, latency, likelihood and learning-curve evaluators.
Shape legend: B rows, T positions, V vocab, P prompt width.
"""

import functools
import math
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from data import vocab
from data.synthetic import OUTCOMES
from evaluation import decoders, translation
from evaluation.run import LoadedRun
from sections import EvalConfig

Log = Callable[[str], None]


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


def prompts_of(
    batch: dict[str, np.ndarray], P: int, max_new_tokens: int, seed: int = 0
) -> decoders.Prompts:
    """The batch's prompts, right-padded to width P, with each row's reference target length
    (its tokens, EOS excluded) and whether it ends with EOS; `seed` keys a sampling decoder."""
    prefix_B, lengths_B = batch["prefix_lengths"], batch["lengths"]
    prompts_BxP = np.where(np.arange(P) < prefix_B[:, None], batch["inputs"][:, :P], vocab.PAD)
    last_B = np.take_along_axis(batch["targets"], (lengths_B - 1)[:, None], axis=1)[:, 0]
    ends_B = last_B == vocab.EOS  # A window cut from a longer text has none.
    return decoders.Prompts(
        prompts_BxP.astype(np.int32),
        prefix_B.astype(np.int32),
        (lengths_B - prefix_B + ~ends_B).astype(np.int32),
        max_new_tokens,
        seed=seed,
        ends_B=ends_B,
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
    # The decoder's own statistics per row (DecoderSpec.statistics), e.g. an exact-parallel
    # decoder's target passes; {} for a decoder without any.
    statistics: dict[str, np.ndarray]
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
    as_text = task.text_metrics
    exact, accuracy, outcomes, samples, statistics, texts = [], [], [], [], [], []
    for index, batch in enumerate(batches):
        prompts = prompts_of(batch, P, max_new, seed=index)
        out = spec.decode(models, prompts)
        generated = _continuations(out, prompts)
        if spec.statistics is not None:
            statistics.append(spec.statistics(out, generated, models, prompts))
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
        by_outcome = {name: (labels == name).astype(float) for name in OUTCOMES}
    statistics = {k: np.concatenate([p[k] for p in statistics]) for k in (statistics or [{}])[0]}
    samples = texts[:num_samples] if as_text else samples
    exact, accuracy = np.concatenate(exact), np.concatenate(accuracy)
    return Scores(exact, accuracy, by_outcome, samples, statistics, texts)


def _sample_line(task, prompt, generated, reference, mark: str) -> str:
    """A sample in the task's symbols: prompt → continuation (reference) and its mark."""
    show = functools.partial(vocab.render, num_symbols=task.num_symbols)
    return f"{show(prompt)}  →  {show(generated)}   (reference {show(reference)}) {mark}"


def _continuations(out, prompts: decoders.Prompts) -> list[np.ndarray]:
    """Each row's generated tokens (its EOS included)."""
    tokens_BxL, lengths_B = np.asarray(out.tokens_BxL), np.asarray(out.lengths_B)
    prefix_B = prompts.prompt_lengths_B
    return [tokens_BxL[b, prefix_B[b] : lengths_B[b]] for b in range(len(prefix_B))]


def scored_decoders(
    run: LoadedRun, settings: EvalConfig, plain_text: bool, log: Log
) -> Iterator[tuple[decoders.DecoderSpec, decoders.Models]]:
    """(spec, models) of every decoder the quality evaluator scores on the variant: those of
    `settings.decoders` that apply, whose second model (if any) is named and trained; on plain
    text only those judged without a reference."""
    for spec in decoders.scored_on(run.mask_kind, run.objective, settings.decoders):
        if plain_text and not spec.reference_free:
            continue
        if spec.needs and not run.needed_variant(spec):
            continue  # The experiment names no such variant: nothing to report.
        if not spec.finds_length(run.model.cfg):
            continue
        models = run.models_for(spec)
        if models is None:
            log(f"    quality: {spec.label} skipped: its {spec.needs} variant is not trained")
            continue
        yield spec, models
