"""Translation metrics: corpus BLEU and chrF with sacrebleu, on detokenised text.

A task whose `text_metrics` is true (a translation task; `task.detokenize(ids) -> str` drops the
special tokens) is scored on text as well as on tokens: each held-out row's source
(the prompt `BOS source SEP`), reference and hypothesis are detokenised, and sacrebleu scores the
corpus of hypotheses against the references (one reference each) with its defaults: BLEU with 13a
tokenisation and exponential smoothing, chrF2 (character 6-grams, beta 2). Both are on
sacrebleu's 0-100 scale.

The sem is the standard deviation of the corpus score over BOOTSTRAP_RESAMPLES resamplings of the
sentences (with replacement): the same draws as sacrebleu's `corpus_score(n_bootstrap=...)` (its
seed, 12345), which the signature records as `bs` and `seed`. They are scored here, with the
metric's own statistics, because sacrebleu 2.6.0's bootstrap raises a TypeError for chrF as soon
as one resample scores 0 (a float among float32s), as a barely trained model's do. The signatures
(taken after `corpus_score`, which fills in nrefs) go into results.json, so a reader can tell
which BLEU this is. Each sentence's BLEU statistics go there too (`sentence_stats`), so that a
difference between two outputs on the same sentences is judged by a paired bootstrap
(evaluation/report/paired.py, Koehn 2004), not by two independent sems.
"""

from collections.abc import Sequence

import numpy as np
from sacrebleu.metrics import BLEU, CHRF

from evaluation.report.paired import RESAMPLES as BOOTSTRAP_RESAMPLES
from evaluation.report.paired import SEED, resampled_rows
from evaluation.report.schema import QUALITY, MetricSpec

METRICS = {"bleu": BLEU, "chrf": CHRF}  # Name in results.json -> sacrebleu metric.
Scalars = dict[str, tuple[float, float | None]]


# The quality table's columns for these scores; a decoder's BLEU gives its verdict (over its
# exact match, which misleads on text), and the honest decode of a leaky model is set against
# the causal model's greedy decode.
METRIC_SPECS = (
    MetricSpec(
        "bleu",
        "BLEU",
        "points",
        QUALITY,
        per_decoder=True,
        verdicts=(
            {"rule": "translation", "priority": 2, "against": "ar_cache",
             "families": ["non-AR", "exact-parallel"]},
            {"rule": "honest_vs_causal", "honest": "ar_no_cache", "causal": "ar_cache"},
            # The field's table (experiments/translate.py): the best student of at most 4
            # passes against AR greedy; the AR − non-AR gap at each family's headline (CMLM's
            # 10 passes and length beam 3, GLAT's one pass as its authors report it, CTC's one
            # pass, MDLM's 10 steps most confident first), raw against distilled; what passes
            # and the length beam buy; and MDLM against CMLM at equal passes.
            {"rule": "fastest_student", "against": "ar_cache", "max_passes": 4, "lead": True},
            {"rule": "nar_gap", "decoder": "mask_predict_k10_lb3", "against": "ar_cache",
             "by_objective": {"glancing": "mask_predict_k1_lb1", "ctc": "ctc",
                              "diffusion": "diffusion_conf_t10_lb1"}},
            {"rule": "iterations"},
            {"rule": "loss_and_sampler"},
        ),
    ),
    MetricSpec("chrf", "chrF", "points", QUALITY, per_decoder=True),
)  # fmt: skip


def row_texts(
    task, prompt_ids: np.ndarray, reference_ids: np.ndarray, generated_ids: np.ndarray
) -> dict[str, str]:
    """One row as text: {source, reference, hypothesis} (special tokens dropped)."""
    return {
        "source": task.detokenize(prompt_ids),
        "reference": task.detokenize(reference_ids),
        "hypothesis": task.detokenize(generated_ids),
    }


def bootstrap_sem(metric, hypotheses: list[str], references: list[str], resamples: int) -> float:
    """The standard deviation of `metric`'s corpus score over resamplings of the sentences."""
    stats_NxK = np.asarray(metric._extract_corpus_statistics(hypotheses, [references]), np.float64)
    rows_RxN = resampled_rows(len(stats_NxK), resamples)
    scores_R = [
        float(metric._compute_score_from_stats(stats_NxK[r].sum(0)).score) for r in rows_RxN
    ]
    return float(np.std(scores_R, ddof=1))


def sentence_stats(hypotheses: Sequence[str], references: Sequence[str]) -> list[list[int]]:
    """BLEU's sufficient statistics of each sentence (n-gram matches and totals, lengths):
    what a corpus BLEU of any resampling of the sentences is computed from
    (evaluation/report/paired.py)."""
    stats = BLEU()._extract_corpus_statistics(list(hypotheses), [list(references)])
    return [[int(v) for v in row] for row in stats]


def corpus_scores(
    hypotheses: Sequence[str],
    references: Sequence[str],
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> tuple[Scalars, dict[str, str]]:
    """{"bleu", "chrf"} -> (corpus score, bootstrap sem), and each metric's sacrebleu signature."""
    hypotheses, references = list(hypotheses), list(references)
    scalars, signatures = {}, {}
    for name, metric_class in METRICS.items():
        metric = metric_class()
        score = float(metric.corpus_score(hypotheses, [references]).score)
        sem = bootstrap_sem(metric, hypotheses, references, resamples) if resamples > 1 else None
        scalars[name] = (score, sem)
        if resamples > 1:  # What corpus_score(n_bootstrap=resamples) would record.
            metric.n_bootstrap, metric.seed = resamples, str(SEED)
        signatures[name] = str(metric.get_signature())  # After corpus_score: it needs nrefs.
    return scalars, signatures
