"""Means and their standard errors, as every evaluator reports them."""

import math

import numpy as np


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
