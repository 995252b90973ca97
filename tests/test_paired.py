"""evaluation/report/paired.py: the paired difference of two token-weighted ratios over the same
rows, and pairing seed for seed (the BLEU bootstrap's own test is in test_translation.py)."""

import math

import numpy as np
import pytest

from evaluation.report.paired import over_seeds, paired_ratio
from evaluation.stats import ratio_mean_sem


def _rows(shared: float = 1.0, seed: int = 0, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Two variants' [nats, tokens] on the same n rows: per-token difficulty that varies by
    `shared` from row to row for both, b 0.05 nats per token above a, and a little noise."""
    rng = np.random.default_rng(seed)
    tokens_N = rng.integers(8, 65, n).astype(np.float64)
    hardness_N = 1.0 + shared * rng.random(n)
    a_N = tokens_N * (hardness_N + 0.01 * rng.standard_normal(n))
    b_N = tokens_N * (hardness_N + 0.05 + 0.01 * rng.standard_normal(n))
    return np.stack([a_N, tokens_N], 1), np.stack([b_N, tokens_N], 1)


def test_the_paired_ratio_difference_is_the_difference_of_the_ratios_with_a_smaller_sem():
    a, b = _rows()
    diff, sem = paired_ratio(b, a)
    (ratio_a, sem_a), (ratio_b, sem_b) = ratio_mean_sem(*a.T), ratio_mean_sem(*b.T)
    assert diff == pytest.approx(ratio_b - ratio_a) and diff == pytest.approx(0.05, abs=0.01)
    assert 0 < sem < 0.1 * math.hypot(sem_a, sem_b)  # What the rows share cancels.
    assert diff > 2 * sem and diff < 2 * math.hypot(sem_a, sem_b)  # Noise only when unpaired.
    assert paired_ratio(a, a) == (0.0, 0.0)


def test_on_unrelated_rows_the_paired_sem_is_about_the_independent_one():
    a, _ = _rows(seed=1, n=2000)
    _, b = _rows(seed=2, n=2000)
    _, sem = paired_ratio(a, b)
    independent = math.hypot(ratio_mean_sem(*a.T)[1], ratio_mean_sem(*b.T)[1])
    assert sem == pytest.approx(independent, rel=0.1)


def test_rows_that_differ_in_number_are_refused():
    a, b = _rows()
    with pytest.raises(ValueError, match=r"Paired rows differ: \(64, 2\) against \(63, 2\)"):
        paired_ratio(a, b[:-1])


def test_seeds_are_paired_seed_for_seed_and_only_when_both_hold_as_many_rows():
    seeds = [_rows(seed=s) for s in range(3)]
    a_seeds, b_seeds = [a for a, _ in seeds], [b for _, b in seeds]
    found = [paired_ratio(b, a) for a, b in seeds]
    diff, sem = over_seeds(b_seeds, a_seeds, paired_ratio)
    diffs = [d for d, _ in found]
    assert diff == pytest.approx(np.mean(diffs))
    expected = math.sqrt(sum(e * e for _, e in found) / 9 + np.var(diffs, ddof=1) / 3)
    assert sem == pytest.approx(expected)
    assert over_seeds(b_seeds[:1], a_seeds[:1], paired_ratio) == found[0]
    assert over_seeds(b_seeds, a_seeds[:2], paired_ratio) is None  # 3 seeds against 2.
    assert over_seeds([b_seeds[0][:-1]], a_seeds[:1], paired_ratio) is None  # 63 rows, 64.
    assert over_seeds([], [], paired_ratio) is None  # Results written before the rows.
