"""The paired bootstrap (Koehn 2004) of a BLEU difference between two outputs on the same
sentences, from each sentence's sufficient statistics (evaluation/translation.py
`sentence_stats`, kept in results.json): both corpora are resampled with the same draws, so what
the two outputs share cancels out of the difference's spread.
"""

from collections.abc import Sequence

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
