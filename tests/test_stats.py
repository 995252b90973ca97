"""evaluation/stats.py: the mean and sem every evaluator reports, and the token-weighted ratio."""

import numpy as np
import pytest

from evaluation.stats import mean_sem, ratio_mean_sem


def test_held_out_loss_is_token_weighted_with_the_ratio_estimators_sem():
    # Two rows: 1 token with loss 1, 3 tokens with loss 2 each. Token-weighted: 7 / 4.
    mean, sem = ratio_mean_sem([1.0, 6.0], [1, 3])
    assert mean == pytest.approx(7 / 4)
    # Residuals s - r n: 1 - 7/4 and 6 - 21/4; sem = sqrt(sum e^2 / (N (N - 1))) / mean(n).
    assert sem == pytest.approx(np.sqrt((0.75**2 + 0.75**2) / 2) / 2)
    # Equal counts: the ratio estimator is the plain mean of per-row means, and its sem.
    assert ratio_mean_sem([2.0, 4.0, 9.0], [2, 2, 2]) == pytest.approx(mean_sem([1.0, 2.0, 4.5]))
    assert ratio_mean_sem([3.0], [2]) == (1.5, 0.0)


def test_mean_sem_known_answers():
    assert mean_sem([1.0, 3.0]) == (2.0, 1.0)
    assert mean_sem([4.0]) == (4.0, 0.0)
