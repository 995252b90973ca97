"""evaluation/report/records.py: per-decoder metric keys are split in one place, and what a
decoder or a variant is comes from the results dict (never parsed out of an id)."""

import pytest

from evaluation.report import records

RESULTS = {
    "decoders": {
        "ar_cache": {"label": "AR (cache)", "family": "AR"},
        "mask_predict_k4": {
            "label": "Mask-Predict K=4",
            "family": "non-AR",
            "params": {"iterations": 4, "length_beam": 3},
        },
    },
    "variants": [
        {"name": "ar", "metrics": {}},
        {"name": "cmlm", "baseline": "ar", "metrics": {}},
        {"name": "student", "baseline": "gone", "config": {"data": {"distilled_dir": "/d"}}},
    ],
}


def test_per_decoder_splits_only_the_named_metrics_keys():
    metrics = {
        "exact_match/ar_cache": {"mean": 0.5},
        "exact_match/mask_predict_k4": {"mean": 0.25},
        "token_accuracy/ar_cache": {"mean": 0.75},
        "exact_match": {"mean": 1.0},  # No decoder: not a per-decoder key.
        "bleu/ar_cache/extra": {"mean": 9.0},
    }
    assert records.per_decoder(metrics, "exact_match") == {
        "ar_cache": {"mean": 0.5},
        "mask_predict_k4": {"mean": 0.25},
    }
    assert records.per_decoder(metrics, "bleu") == {"ar_cache/extra": {"mean": 9.0}}
    assert records.decoders_of({"metrics": metrics}) == ["ar_cache", "mask_predict_k4"]


def test_a_decoders_label_family_and_params_come_from_results():
    assert records.label_of(RESULTS, "mask_predict_k4") == "Mask-Predict K=4"
    assert records.family_of(RESULTS, "mask_predict_k4") == "non-AR"
    assert records.params_of(RESULTS, "mask_predict_k4") == {"iterations": 4, "length_beam": 3}
    # Not listed (results written before decoders were recorded): the id, "—" and {}.
    assert records.label_of(RESULTS, "mask_predict_k8") == "mask_predict_k8"
    assert records.family_of(RESULTS, "mask_predict_k8") == "—"
    assert records.params_of(RESULTS, "ar_cache") == records.params_of({}, "x") == {}


@pytest.mark.parametrize(
    ("metric", "sem"),
    [
        # Over seeds: their spread and their sems over the same examples combined.
        ({"sem": 0.3, "per_seed": [1, 2, 3], "per_seed_sem": [0.4, 0.4, 0.4]}, 0.5),
        ({"sem": 0.2, "per_seed": [1, 2], "per_seed_sem": [0.1, None]}, 0.2),  # Spread alone.
        ({"sem": None, "per_seed_sem": [0.1, 0.3]}, 0.1),  # One seed: over examples.
        ({"sem": None, "per_seed_sem": [None]}, 0.0),
        ({"sem": None}, 0.0),
    ],
)
def test_example_sem_combines_the_seeds_spread_and_their_sems_over_examples(metric, sem):
    assert records.example_sem(metric) == pytest.approx(sem)


def test_a_variants_baseline_and_whether_it_was_distilled():
    ar, cmlm, student = RESULTS["variants"]
    assert records.baseline_of(RESULTS, cmlm) is ar
    assert records.baseline_of(RESULTS, ar) is None
    assert records.baseline_of(RESULTS, student) is None  # Names a variant not in results.
    assert records.distilled(student) and not records.distilled(cmlm)
