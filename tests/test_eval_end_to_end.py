"""eval.py's pipeline end to end on a freshly trained tiny experiment (slow: trains two models)."""

import json
import os

import pytest

from evaluation import report, runner
from experiments import tiny


@pytest.mark.slow
def test_train_then_evaluate_writes_a_complete_report(tmp_path):
    from training import loop

    config = tiny.get_config()
    config.train.update(num_steps=10, log_every=5, eval_every=10, checkpoint_every=10)
    config.eval.update(
        num_examples=16,
        batch_size=16,
        leakage_examples=4,
        dependency_examples=1,
        random_floor_examples=16,
        speed_lengths=(16, 32),
        speed_no_cache_max_length=16,
        speed_batch_size=4,
        speed_throughput_length=16,
        speed_repeats=1,
        train_speed_seq_len=16,
        train_speed_batch_size=2,
        train_speed_steps=1,
    )
    workdir = str(tmp_path / "tiny")
    loop.train_experiment(config, workdir, None, overwrite=False)
    results, pictures = runner.evaluate_workdir(workdir, log=lambda _: None)
    results.update(report.environment(os.getcwd()))
    results["verdicts"] = report.verdicts(results["variants"], results["speed"])
    path = report.write_report(
        workdir, results, report.figures(results["variants"], pictures, results["speed"])
    )
    with open(os.path.join(path, "results.json")) as f:
        saved = json.load(f)
    assert [v["name"] for v in saved["variants"]] == ["causal", "full"]
    causal, full = saved["variants"]
    assert causal["metrics"]["perturbation_leakage"]["per_seed"] == [0.0]
    assert full["metrics"]["perturbation_leakage"]["mean"] > 0
    assert causal["metrics"]["loss_honest"]["mean"] == pytest.approx(
        causal["metrics"]["loss_teacher_forced"]["mean"], rel=1e-5
    )
    assert set(full["metrics"]) >= {
        "exact_match/AR (no cache, honest)",
        "exact_match/AR (cache, naive)",
    }
    assert causal["metrics"]["loss_honest"]["n_seeds"] == 1 and causal["steps"] == [10]
    assert {"sampling", "training"} <= set(saved["speed"]) and saved["commit"]
    assert os.path.exists(os.path.join(path, "attention_maps.png"))
