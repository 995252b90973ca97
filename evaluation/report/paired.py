"""Differences between two variants scored on the same rows, judged row by row, so that what
the two share (a hard sentence, a long row) cancels out of the difference's spread.

- BLEU: the paired bootstrap (Koehn 2004), from each sentence's sufficient statistics
  (evaluation/translation.py `sentence_stats`): both corpora are resampled with the same draws.
- A token-weighted ratio (bits per token: evaluation/likelihood.py keeps each row's [nats,
  tokens]): the ratio estimator of the difference of two ratios, from each row's residuals.

Both read the per-row statistics results.json keeps under a variant's `sentences` ({metric:
[one list of rows per seed]}); `over_seeds` pairs them seed by seed, and says when it cannot.
"""

import math
import statistics
from collections.abc import Callable, Sequence

import numpy as np
from sacrebleu.metrics import BLEU

RESAMPLES = 300  # About 0.1 s per metric for 300 sentences.
SEED = 12345  # sacrebleu's default bootstrap seed.


def resampled_rows(count: int, resamples: int) -> np.ndarray:
    """[resamples, count] sentence indices drawn with replacement: sacrebleu's bootstrap draws
    (its seed), shared by every bootstrap sem of the report and evaluation/translation.py."""
    return np.random.default_rng(SEED).choice(count, size=(resamples, count), replace=True)


def paired_bootstrap(
    a_NxK: Sequence[Sequence[int]], b_NxK: Sequence[Sequence[int]], resamples: int = RESAMPLES
) -> tuple[float, float]:
    """(corpus BLEU of a − corpus BLEU of b, the standard deviation of that difference over
    resamplings of the sentences, the same draws for both), for two outputs on the same
    sentences, in the same order."""
    a_NxK, b_NxK = np.asarray(a_NxK, np.float64), np.asarray(b_NxK, np.float64)
    if a_NxK.shape != b_NxK.shape:
        raise ValueError(f"Paired sentences differ: {a_NxK.shape} against {b_NxK.shape}")
    metric = BLEU()

    def bleu(stats_K) -> float:
        return float(metric._compute_score_from_stats(stats_K).score)

    rows_RxN = resampled_rows(len(a_NxK), resamples)
    diffs_R = [bleu(a_NxK[r].sum(0)) - bleu(b_NxK[r].sum(0)) for r in rows_RxN]
    return bleu(a_NxK.sum(0)) - bleu(b_NxK.sum(0)), float(np.std(diffs_R, ddof=1))


def paired_ratio(a_Nx2: Sequence[Sequence[float]], b_Nx2: Sequence[Sequence[float]]):
    """(Σ a's sums / Σ a's counts − the same of b, its sem) for two ratios over the same rows
    (each row [sum, count], in the same order): the ratio estimator's linearised residuals of
    the two, differenced row by row, so that their sem shrinks with what the rows share."""
    a_Nx2, b_Nx2 = np.asarray(a_Nx2, np.float64), np.asarray(b_Nx2, np.float64)
    if a_Nx2.shape != b_Nx2.shape or a_Nx2.ndim != 2 or a_Nx2.shape[1] != 2:
        raise ValueError(f"Paired rows differ: {a_Nx2.shape} against {b_Nx2.shape}")

    def ratio_and_residuals(rows_Nx2):
        sums_N, counts_N = rows_Nx2[:, 0], rows_Nx2[:, 1]
        ratio = sums_N.sum() / max(counts_N.sum(), 1.0)
        return ratio, (sums_N - ratio * counts_N) / max(counts_N.mean(), 1e-12)

    ratio_a, residual_a_N = ratio_and_residuals(a_Nx2)
    ratio_b, residual_b_N = ratio_and_residuals(b_Nx2)
    N = len(a_Nx2)
    if N < 2:
        return float(ratio_a - ratio_b), 0.0
    residual_N = residual_a_N - residual_b_N
    return float(ratio_a - ratio_b), math.sqrt(float((residual_N**2).sum()) / (N * (N - 1)))


def over_seeds(
    seeds_a: Sequence[Sequence], seeds_b: Sequence[Sequence], paired: Callable
) -> tuple[float, float] | None:
    """(the mean over seeds of `paired(a's rows, b's rows)` differences, its sem: the seeds'
    sems combined with the spread of their differences), seed for seed; None unless both hold
    as many seeds (at least one) with as many rows each (else the means a verdict prints over
    every seed would not be the ones differenced)."""
    same = len(seeds_a) == len(seeds_b) > 0 and all(
        len(sa) == len(sb) > 0 for sa, sb in zip(seeds_a, seeds_b, strict=True)
    )
    if not same:
        return None
    found = [paired(sa, sb) for sa, sb in zip(seeds_a, seeds_b, strict=True)]
    diffs, sems = [d for d, _ in found], [e for _, e in found]
    n = len(found)
    spread = statistics.variance(diffs) / n if n > 1 else 0.0
    return statistics.fmean(diffs), math.sqrt(sum(e * e for e in sems) / n / n + spread)
