"""The evaluation runner (evaluation/runner.py) end to end on a freshly trained tiny experiment,
and eval.py's command line."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from evaluation import environment, report, runner
from training import run_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def results(tiny_workdir):
    return runner.evaluate_workdir(tiny_workdir, log=lambda _: None)


def test_aggregate_known_answers():
    out = runner.aggregate([{"m": (1.0, 0.1)}, {"m": (3.0, 0.2)}])["m"]
    assert out == {
        "mean": 2.0,
        "sem": 1.0,
        "n_seeds": 2,
        "per_seed": [1.0, 3.0],
        "per_seed_sem": [0.1, 0.2],
    }
    assert runner.aggregate([{"m": (1.0, None)}])["m"]["sem"] is None
    # A metric only some seeds have is aggregated over those.
    assert (
        runner.aggregate([{"a": (1.0, None)}, {"a": (2.0, None), "b": (5.0, None)}])["b"]["n_seeds"]
        == 1
    )


@pytest.mark.slow
def test_every_evaluator_fills_its_part_of_results(results):
    assert results["schema_version"] == report.SCHEMA_VERSION == runner.SCHEMA_VERSION
    assert [v["name"] for v in results["variants"]] == ["causal", "full", "cmlm"]
    assert results["untrained_variants"] == ["never"]
    causal, full, cmlm = results["variants"]
    assert causal["metrics"]["perturbation_leakage"]["per_seed"] == [0.0]
    assert full["metrics"]["perturbation_leakage"]["mean"] > 0
    assert causal["metrics"]["loss_honest"]["mean"] == pytest.approx(
        causal["metrics"]["loss_teacher_forced"]["mean"], rel=1e-5
    )
    assert {"exact_match/ar_no_cache", "exact_match/ar_cache_naive"} <= set(full["metrics"])
    # AR and non-AR variants share one evaluation: the CMLM variant is scored by mask-predict,
    # has no next-token losses, and names its AR baseline.
    assert "loss_honest" not in cmlm["metrics"] and cmlm["baseline"] == "causal"
    assert [k for k in cmlm["metrics"] if k.startswith("exact_match/")] == [
        f"exact_match/mask_predict_k{k}" for k in (1, 2, 4, 8)
    ]
    # Exact-parallel decoders give greedy AR's tokens on every held-out row, in fewer passes.
    for name in ("jacobi4", "speculative_ar4", "speculative_cmlm8"):
        assert causal["metrics"][f"equals_greedy/{name}"]["mean"] == 1.0, name
        assert causal["metrics"][f"target_passes_per_token/{name}"]["mean"] <= 1.0, name
    assert causal["metrics"]["acceptance/speculative_ar4"]["mean"] == 1.0  # Itself.
    assert "equals_greedy/jacobi4" not in full["metrics"]  # Not an AR model.
    assert causal["steps"] == [3] and causal["num_steps"] == 3 and causal["num_params"] > 0
    # What training logged up to the evaluated step: its seconds (compile included) and FLOPs.
    assert causal["train_cost"]["seconds"] > 0 and causal["train_cost"]["flops"] > 0
    assert len(causal["pictures"]["dependency_map"]) == len(causal["pictures"]["labels"])
    assert results["decoders"]["mask_predict_k1"]["family"] == "non-AR"
    assert results["decoders"]["ar_cache"]["family"] == "AR"
    json.dumps(results, allow_nan=False)  # What results.json will hold.


@pytest.mark.slow
def test_the_speed_section_times_every_family_in_one_table(results):
    speed = results["speed"]
    assert speed["variant"] == "causal" and speed["model"]["num_layers"] == 2
    timed = {(row["decoder"], row["batch_size"], row["length"]) for row in speed["sampling"]}
    assert timed == {
        (name, batch, 12)
        for name in ("ar_cache", "ar_no_cache", "mask_predict_k1")
        for batch in (1, 2)
    }
    assert all(row["tokens_per_s"] > 0 for row in speed["sampling"])
    assert [row["objective"] for row in speed["training"]] == ["teacher_forcing", "sequential"]


@pytest.mark.slow
def test_evaluators_and_variants_can_be_chosen(tiny_workdir):
    chosen = runner.evaluate_workdir(
        tiny_workdir, variants=["full"], evaluators=["leakage"], log=lambda _: None
    )
    assert [v["name"] for v in chosen["variants"]] == ["full"]
    assert set(chosen["variants"][0]["metrics"]) == {
        "perturbation_leakage",
        "dependency_future_share",
    }
    assert chosen["speed"] == {} and chosen["untrained_variants"] == []
    with pytest.raises(ValueError, match="Unknown evaluators"):
        runner.evaluate_workdir(tiny_workdir, evaluators=["leakag"])
    for key in ("decoders", "speed.decoders"):  # Checked before any variant is evaluated.
        with pytest.raises(ValueError, match=r"Unknown decoders \['nope'\]"):
            runner.evaluate_workdir(tiny_workdir, eval_overrides={key: ("nope",)})


@pytest.mark.slow
def test_a_judge_must_be_a_next_token_model_and_a_variant_of_the_experiment(tiny_workdir):
    """A leaky full-mask model was once accepted as the judge of generative NLL, and a misspelt
    one was logged as "not trained" with exit 0."""

    def evaluate(judge):
        return runner.evaluate_workdir(
            tiny_workdir, evaluators=["loss"], variants=["causal"], log=lambda _: None,
            eval_overrides={"diffusion.ar_variant": judge},
        )  # fmt: skip

    with pytest.raises(ValueError, match=r"'casual' is not a variant .* did you mean 'causal'"):
        evaluate("casual")
    for judge, kind in (("full", "next_token model .* mask 'full'"), ("cmlm", "masked model")):
        with pytest.raises(ValueError, match=rf"ar_variant='{judge}' cannot judge .*{kind}"):
            evaluate(judge)
    assert evaluate("causal")["variants"][0]["name"] == "causal"  # An AR model judges.


@pytest.mark.slow
def test_eval_overrides_replace_what_the_runs_were_trained_with(tiny_workdir):
    chosen = runner.evaluate_workdir(
        tiny_workdir,
        variants=["causal"],
        evaluators=["quality"],
        eval_overrides={"num_samples": 1, "decoders": ("ar_cache", "beam4")},
        log=lambda _: None,
    )
    samples = chosen["variants"][0]["samples"]
    assert list(samples) == ["ar_cache", "beam4"]
    assert [len(lines) for lines in samples.values()] == [1, 1]
    with pytest.raises(ValueError, match="eval.num_examples must be >= 1"):
        runner.evaluate_workdir(tiny_workdir, eval_overrides={"num_examples": 0})


def _eval_py(*flags, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "eval.py", *flags],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_render_only_rebuilds_the_report_from_results_json_alone(results, tmp_path):
    """No checkpoint, no run folder: just report/results.json, as someone might share it."""
    workdir = tmp_path / "shared"
    results = {**results, **environment.describe(REPO)}
    path = report.write(run_folder.report_dir(str(workdir)), results)
    before = {name: (workdir / "report" / name).read_bytes() for name in os.listdir(path)}
    for name in ("index.html", "report.md", "dependency_maps.png"):
        os.remove(os.path.join(path, name))
    result = _eval_py(f"--workdir={workdir}", "--render_only")
    assert result.returncode == 0, result.stderr[-2000:]
    after = {name: (workdir / "report" / name).read_bytes() for name in os.listdir(path)}
    assert after.keys() == before.keys()
    for name in ("index.html", "report.md", "results.json"):
        assert after[name] == before[name], name
    assert "causal: perturbation leakage is exactly 0.0" in result.stdout


@pytest.mark.slow
def test_render_only_without_results_is_one_clear_line(tmp_path):
    result = _eval_py(f"--workdir={tmp_path}", "--render_only")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("eval.py: ") and "Traceback" not in result.stderr
    assert "results.json" in result.stderr


@pytest.mark.slow
def test_eval_py_writes_a_complete_report(tiny_workdir, tmp_path):
    workdir = tmp_path / "tiny"
    shutil.copytree(tiny_workdir, workdir)
    # Every evaluator, timings included: 120 s was too little on a loaded 2-core machine.
    result = _eval_py(f"--workdir={workdir}", timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    names = set(os.listdir(workdir / "report"))
    assert {"results.json", "report.md", "index.html", "attention_maps.png"} <= names


@pytest.mark.slow
def test_an_evaluator_with_nothing_to_measure_says_why_in_one_line_per_run(tiny_workdir):
    """The likelihood on a CMLM run, latency at batch_size 0 and a learning curve over one kept
    checkpoint once said nothing (or, for the curve, averaged one checkpoint with itself)."""
    lines = []
    results = runner.evaluate_workdir(
        tiny_workdir, variants=["cmlm"], evaluators=["likelihood", "latency", "learning_curve"],
        log=lines.append,
    )  # fmt: skip
    (record,) = results["variants"]
    assert record["skipped"] == {
        "likelihood": "a masked model (masked) has no likelihood here",
        "latency": "eval.latency.batch_size is 0 (off)",
        "learning_curve": "1 checkpoint kept; a curve and averaging need 2 or more "
        "(train.keep_checkpoints)",
    }
    assert record["metrics"] == {} and not record["pictures"]
    assert "[cmlm seed 0] likelihood: not measured: a masked model" in "\n".join(lines)
