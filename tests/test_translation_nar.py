"""Non-AR translation on the encoder-decoder (issue #23): a CMLM train step with the length loss,
length-beam decoding, distillation of a TFDS translation task with beam search, and the checkpoint
history (evaluation/checkpoint_history.py) with the learning-curve evaluator
(evaluation/learning_curve.py) and its report figure."""

import json
import os
import re
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_tfds
from conftest import make_tiny_config
from flax import nnx
from report_fixtures import make_results, metric

import data
from data import distilled, vocab
from evaluation import checkpoint_history, learning_curve, quality, runner, scoring
from evaluation.report import curves, figures, sections
from evaluation.run import load_run
from experiments import tiny
from model import beam_search, generate, make_decoder, mask_predict
from objectives import length_loss, with_length_loss
from objectives.masked import masked_loss
from plan import experiment_json, make_plan, make_plans
from training import checkpoints, run_folder
from training.loop import train_experiment
from training.step import Hyperparams, bind_train_step, init_train_state

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cmlm_plan(**train):
    """experiments/tiny.py (copy), shrunk, as a CMLM encoder-decoder: full decoder mask, masked
    objective, a length head."""
    config = tiny.get_config()
    config.model.update(
        architecture="encoder_decoder", num_layers=1, d_model=16, num_heads=2, d_ff=32
    )
    config.train.update(**train)
    config.variants.cmlm = {
        "model": {"attention_mask_kind": "full", "length_head": True},
        "train": {"objective": "masked"},
    }
    return make_plan(config, "cmlm")


# 20-34 s on the 2-core CPU beside a training run, most of it compiling the train step.
@pytest.mark.slow
def test_a_cmlm_encoder_decoder_step_adds_the_weighted_length_loss_and_learns_a_fixed_batch():
    plan = _cmlm_plan(learning_rate=1e-2, warmup_steps=1, num_steps=20, length_loss_weight=0.5)
    hparams = Hyperparams.from_config(plan.train)
    graphdef, params, opt_state = init_train_state(plan.model, hparams, 0)
    batch = {k: jnp.asarray(v) for k, v in data.make_task(plan.data).batch(0, 8).items()}
    total = with_length_loss(masked_loss, 0.5)
    fixed_rng = jax.random.key(7)

    def losses(params) -> tuple[float, float]:
        model = nnx.merge(graphdef, params)
        return float(total(model, batch, fixed_rng, None)[0]), float(length_loss(model, batch))

    model = nnx.merge(graphdef, params)
    before, length_before = losses(params)
    plain = float(masked_loss(model, batch, fixed_rng, None)[0])
    np.testing.assert_allclose(before, plain + 0.5 * length_before, rtol=1e-6)
    # The step's loss is that total, with the masks of fold_in(seed_key, step).
    seed_key = jax.random.key(0)
    objective_rng, _ = jax.random.split(jax.random.fold_in(seed_key, 0))
    expected = float(total(model, batch, objective_rng, None)[0])
    step_fn = bind_train_step(graphdef, "masked")
    for step in range(8):
        params, opt_state, metrics = step_fn(params, opt_state, batch, step, seed_key, hparams)
        if step == 0:
            np.testing.assert_allclose(float(metrics["loss"]), expected, rtol=1e-5)
    after, length_after = losses(params)
    assert after < 0.8 * before and length_after < 0.8 * length_before


# 14-25 s (the same machine): three mask-predict programs (beams 3 and 1, given lengths).
@pytest.mark.slow
def test_length_beam_decoding_on_the_encoder_decoder_keeps_one_hypothesis_per_row():
    cfg = make_tiny_config(
        architecture="encoder_decoder", attention_mask_kind="full", length_head=True, max_len=20
    )
    model = make_decoder(cfg, 0)
    prompt_lengths = np.array([6, 4, 5])
    prompts = np.random.default_rng(0).integers(vocab.FIRST_SYMBOL, cfg.vocab_size, (3, 6))
    prompts = np.where(np.arange(6) < prompt_lengths[:, None], prompts, vocab.PAD)
    kwargs = dict(num_iterations=2, mask_id=vocab.MASK, eos_id=vocab.EOS, max_target_len=10)
    beam = mask_predict(model, prompts, prompt_lengths, None, length_beam=3, **kwargs)
    tokens, lengths = np.asarray(beam.tokens_BxL), np.asarray(beam.lengths_B)
    assert tokens.shape == (3, 6 + 10 + 1)
    logits = np.asarray(model.length_logits(jnp.asarray(prompts), jnp.asarray(prompt_lengths)))
    allowed = np.where((np.arange(logits.shape[1]) >= 1) & (np.arange(logits.shape[1]) <= 10),
                       logits, -np.inf)  # fmt: skip
    for b, p in enumerate(prompt_lengths):  # The prompt, a target of a top-3 length, then EOS.
        np.testing.assert_array_equal(tokens[b, :p], prompts[b, :p])
        assert lengths[b] - p - 1 in np.argsort(-allowed[b], kind="stable")[:3]
        assert tokens[b, lengths[b] - 1] == vocab.EOS
    # A length beam of 1 is mask-predict given the length head's likeliest length.
    one = mask_predict(model, prompts, prompt_lengths, None, length_beam=1, **kwargs)
    argmax = mask_predict(model, prompts, prompt_lengths, allowed.argmax(axis=1), **kwargs)
    np.testing.assert_array_equal(one.lengths_B, argmax.lengths_B)
    np.testing.assert_array_equal(one.tokens_BxL, argmax.tokens_BxL)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> tuple[str, dict]:
    """A copy-task run folder with real Orbax checkpoints at steps 10, 20 and 30 (a fresh
    state, its params scaled by 1, -2 and 3), and those params by step."""
    plan = make_plan(tiny.get_config(), "causal")  # test_checkpoints' shapes: compiled once.
    run_dir = run_folder.run_dir(str(tmp_path_factory.mktemp("history")), "causal", 0)
    checkpoints.prepare_run_dir(run_dir, plan, "new")
    _, params, opt_state = init_train_state(plan.model, Hyperparams.from_config(plan.train), 0)
    manager = checkpoints.make_manager(run_dir, 3)
    saved = {}
    for step, scale in ((10, 1.0), (20, -2.0), (30, 3.0)):
        saved[step] = jax.tree.map(lambda x, s=scale: x * s, params)
        checkpoints.save(manager, step, saved[step], opt_state)
    checkpoints.close(manager)
    return run_dir, saved


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


def test_the_history_lists_the_kept_steps_and_loads_the_model_at_each(saved_run):
    run_dir, saved = saved_run
    assert checkpoint_history.kept_steps(run_dir) == [10, 20, 30]
    assert [step for step, _ in checkpoint_history.models(run_dir)] == [10, 20, 30]
    for got, want in zip(_leaves(checkpoint_history.model_at(run_dir, 20)), _leaves(saved[20]),
                         strict=True):  # fmt: skip
        np.testing.assert_array_equal(got, want)


def test_averaging_the_last_two_checkpoints_gives_their_elementwise_mean(saved_run):
    run_dir, saved = saved_run
    model, steps = checkpoint_history.averaged_model(run_dir, 2)
    assert steps == [20, 30]
    pairs = zip(_leaves(model), _leaves(saved[20]), _leaves(saved[30]), strict=True)
    for got, a, b in pairs:
        np.testing.assert_array_equal(got, (a + b) / np.float32(2))
    assert checkpoint_history.averaged_model(run_dir, 5)[1] == [10, 20, 30]  # All it keeps.
    # An eval beside training keeps to the step it evaluates: step 30 was saved after it.
    model, steps = checkpoint_history.averaged_model(run_dir, 2, up_to=20)
    assert steps == [10, 20]
    for got, a, b in zip(_leaves(model), _leaves(saved[10]), _leaves(saved[20]), strict=True):
        np.testing.assert_array_equal(got, (a + b) / np.float32(2))


def test_a_bad_count_or_an_unkept_step_is_refused_in_one_line(saved_run):
    run_dir, _ = saved_run
    with pytest.raises(ValueError, match="int >= 1, got 0"):
        checkpoint_history.averaged_model(run_dir, 0)
    with pytest.raises(ValueError, match=r"no checkpoint at steps \[15\]; it keeps \[10, 20, 30\]"):
        checkpoint_history.model_at(run_dir, 15)


def test_a_damaged_checkpoint_is_skipped_with_a_warning(saved_run, tmp_path, capsys):
    run_dir = str(tmp_path / "causal" / "seed_0")
    shutil.copytree(saved_run[0], run_dir)
    damaged = os.path.join(run_folder.checkpoint_dir(run_dir), "30", "params")
    for folder, _, files in os.walk(damaged):  # As a full disk or a crash mid-write leaves it.
        for name in files:
            with open(os.path.join(folder, name), "r+b") as f:
                f.truncate(os.path.getsize(f.name) // 3)
    _, steps = checkpoint_history.averaged_model(run_dir, 2)
    assert steps == [10, 20]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "step 30" in line]
    assert len(warnings) == 1 and warnings[0].endswith("skipped.")


@pytest.mark.slow
def test_the_learning_curve_evaluator_gives_one_point_per_kept_checkpoint(saved_run):
    """Through eval.py's code (runner.py's table) to results.json."""
    workdir = os.path.dirname(os.path.dirname(saved_run[0]))
    lines = []
    results = runner.evaluate_workdir(
        workdir,
        evaluators=["learning_curve"],
        eval_overrides={"learning_curve.num_examples": 16},
        log=lines.append,
    )
    record = results["variants"][0]
    curve = record["pictures"]["learning_curve"]
    assert curve["steps"] == [10, 20, 30] and len(curve["values"]) == 3
    # Saved without training, so no metrics.jsonl: no time or FLOPs (the figure uses steps).
    assert curve["seconds"] == curve["flops"] == [None, None, None]
    assert (curve["decoder"], curve["metric"], curve["num_examples"]) == (
        "ar_cache", "exact_match", 16,
    )  # fmt: skip  # Copy is no translation: exact match, not BLEU.
    assert record["metrics"]["exact_match_last"]["per_seed"] == [curve["values"][-1]]
    assert record["metrics"]["averaged_checkpoints"]["mean"] == 3.0
    assert curve["averaged_steps"] == [10, 20, 30]
    assert "exact_match_averaged" in [spec["name"] for spec in results["metrics_info"]]
    progress = [line for line in lines if re.search(r"learning curve: step \d+ \(\d/3\)", line)]
    assert len(progress) == 3  # One line per checkpoint.
    assert set(figures.figures(results)) == {"learning_curves.png"}  # No maps were measured.


def test_the_training_cost_of_a_step_adds_each_logged_interval_at_its_own_rate(tmp_path):
    run_dir = str(tmp_path)
    lines = [
        {"step": 10, "split": "train", "step_time_s": 0.5, "compile_time_s": 3.0, "flops": 2.0},
        {"step": 10, "split": "eval", "loss": 1.0},
        {"step": 30, "split": "train", "step_time_s": 0.25, "flops": 4.0},
        {"step": 40, "split": "train", "step_time_s": 1.0},  # Logged before FLOPs were.
    ]
    with open(run_folder.metrics_path(run_dir), "w") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    seconds, flops = checkpoint_history.training_cost(run_dir, [10, 20, 30, 40, 50])
    assert seconds == [8.0, 10.5, 13.0, 23.0, None]  # 3 + 10 x 0.5, then 0.25 a step, then 1.
    assert flops == [20.0, 60.0, 100.0, None, None]


def _with_curves(results: dict) -> dict:
    """make_results() with learning curves (BLEU on one variant, exact match on another) and
    the learning-curve evaluator's metrics, as eval.py would store them."""
    results["metrics_info"] += [spec.to_json() for spec in learning_curve.METRICS]
    # BLEU is on a 0-100 scale, exact match a share.
    for record, score, scale in zip(results["variants"][:2], ("bleu", "exact_match"), (1, 0.01),
                                    strict=True):  # fmt: skip
        record["pictures"] = {"learning_curve": {
            "decoder": "ar_cache", "decoder_label": "AR (cache)", "metric": score,
            "num_examples": 8, "steps": [10, 20, 30], "averaged_steps": [20, 30],
            "values": [10 * scale, 40 * scale, 60 * scale], "sems": [5 * scale, 5 * scale, None],
            "averaged": 70 * scale,
        }}  # fmt: skip
        record["metrics"][f"{score}_last"] = metric(60 * scale, example_sem=5 * scale)
        record["metrics"][f"{score}_averaged"] = metric(70 * scale, example_sem=5 * scale)
        record["metrics"][f"{score}_averaging_gain"] = metric(10 * scale)
    return results


def test_the_report_draws_the_learning_curves_and_tabulates_the_averaging():
    results = _with_curves(make_results())
    results["speed"] = {}  # Its figures are test_report_figures' business.
    images = figures.figures(results)  # Variants whose pictures lack maps draw no maps.
    assert images["learning_curves.png"].startswith(b"\x89PNG\r\n\x1a\n")
    assert "dependency_maps.png" in images  # From the CMLM variant's maps.
    out = sections.sections(results, images)
    files = [s["file"] for s in out if s["kind"] == "figure"]
    assert files.index("learning_curves.png") == files.index("loss_curves.png") + 1
    table = next(s for s in out if s["title"] == learning_curve.TABLE)
    assert table["headers"][1:4] == ["BLEU, last checkpoint", "BLEU, last checkpoints averaged",
                                     "exact match, last checkpoint"]  # fmt: skip
    verdicts = [entry for s in out if s["kind"] == "verdicts" for g in s["groups"]
                for entry in g["entries"]]  # fmt: skip
    assert "causal: averaging its last checkpoints changes held-out BLEU by 10.0" in " ".join(
        verdicts
    )


def test_the_learning_curves_are_drawn_against_training_time_only_when_every_run_logged_it():
    results = _with_curves(make_results())
    bleu, match = (r["pictures"]["learning_curve"] for r in results["variants"][:2])
    bleu["seconds"] = [60.0, 120.0, 240.0]
    timed, untimed = curves.learning_curves(results["variants"]).axes
    assert timed.get_xlabel() == "training minutes (this machine)"
    np.testing.assert_allclose(timed.lines[0].get_xdata(), [1.0, 2.0, 4.0])
    assert untimed.get_xlabel() == "training step"  # exact match: its run logged no time.
    match["seconds"] = [None, 30.0, 60.0]  # A gap in the log: steps again.
    assert curves.learning_curves(results["variants"]).axes[1].get_xlabel() == "training step"
    # Where every curve of a score logged its FLOPs, a panel against them follows its time's.
    for record in results["variants"]:
        curve = (record.get("pictures") or {}).get("learning_curve")
        if curve and curve["metric"] == "bleu":
            curve["flops"] = [1e12, 2e12, 4e12]
    panels = curves.learning_curves(results["variants"]).axes
    assert [ax.get_xlabel() for ax in panels] == [
        "training minutes (this machine)",
        "training TFLOP (log scale)",
        "training step",
    ]
    assert panels[1].get_xscale() == "log"
    np.testing.assert_allclose(panels[1].lines[0].get_xdata(), [1.0, 2.0, 4.0])


@pytest.fixture(scope="module")
def translation_teacher(tmp_path_factory) -> str:
    """A causal encoder-decoder trained 3 steps on tiny_tfds's English -> Spanish set (bytes),
    a checkpoint after each step."""
    data_dir = tiny_tfds.prepare(str(tmp_path_factory.mktemp("tfds")))
    config = tiny.get_config()
    config.model.update(architecture="encoder_decoder", num_layers=1, d_model=32, d_ff=64)
    config.data.update(task="tfds_translation", tfds_name=tiny_tfds.NAME, data_dir=data_dir,
                       source_key="en", target_key="es", seq_len=32)  # fmt: skip
    config.train.update(batch_size=8, num_steps=3, log_every=3, eval_every=0, checkpoint_every=1,
                        keep_checkpoints=3, peak_flops_per_device=1e11)  # fmt: skip
    config.eval.update(batch_size=12, decoders=("ar_cache",))
    workdir = str(tmp_path_factory.mktemp("translate"))
    train_experiment(make_plans(config, "causal"), workdir, experiment_json(config))
    return run_folder.run_dir(workdir, "causal", 0)


@pytest.mark.slow
def test_distill_py_writes_each_prompt_followed_by_the_teachers_beam4_output(
    translation_teacher, tmp_path
):
    out = str(tmp_path / "distilled")
    command = [sys.executable, "distill.py", f"--teacher={translation_teacher}", f"--out={out}",
               "--decoder=beam4", "--num_examples=24", "--batch_size=12"]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "24/24 [" in result.stderr  # The progress bar's last state.
    provenance = distilled.read_provenance(out)
    assert provenance["decoder"] == "beam4" and provenance["seconds"] > 0
    model, _, plan, _ = checkpoints.load_params(translation_teacher)
    task = data.make_task(plan.data)
    rows = distilled.read_rows(out)
    differs_from_reference = differs_from_greedy = 0
    for i in range(2):
        train = task.batch(i, 12, split="train")
        prefix_B = train["prefix_lengths"]
        np.testing.assert_array_equal(rows["prefix_lengths"][12 * i : 12 * (i + 1)], prefix_B)
        P = int(prefix_B.max())
        prompts = scoring.prompts_of(train, P, min(task.seq_len, model.cfg.max_len) + 1 - P)
        beam = beam_search(model, prompts.prompts_BxP, prefix_B, beam_size=4, length_penalty=0.6,
                           max_new_tokens=prompts.max_new_tokens, eos_id=vocab.EOS)  # fmt: skip
        tokens_BxKxL, lengths_BxK = np.asarray(beam.tokens_BxKxL), np.asarray(beam.lengths_BxK)
        greedy = generate(model, prompts.prompts_BxP, prefix_B,
                          max_new_tokens=prompts.max_new_tokens, eos_id=vocab.EOS)  # fmt: skip
        for b, p in enumerate(prefix_B):
            row = 12 * i + b
            np.testing.assert_array_equal(rows["inputs"][row, :p], train["inputs"][b, :p])
            continuation = tokens_BxKxL[b, 0, p : lengths_BxK[b, 0]]  # The best beam.
            got = rows["targets"][row, p - 1 : rows["lengths"][row]]
            np.testing.assert_array_equal(got, continuation)
            reference = train["targets"][b, p - 1 : train["lengths"][b]]
            differs_from_reference += not np.array_equal(reference, continuation)
            greedy_row = np.asarray(greedy.tokens_BxL)[b, p : int(greedy.lengths_B[b])]
            differs_from_greedy += not np.array_equal(greedy_row, continuation)
    # The test can tell the teacher from the references, and beam search from greedy (22 of
    # the 24 rows differ on the 2-core CPU).
    assert differs_from_reference > 0 and differs_from_greedy > 0
    # Without --num_examples, the whole training split once (tiny_tfds: 48 pairs).
    whole = str(tmp_path / "whole")
    command = [sys.executable, "distill.py", f"--teacher={translation_teacher}", f"--out={whole}"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert distilled.read_provenance(whole)["num_examples"] == len(tiny_tfds.PAIRS["train"]) == 48


@pytest.mark.slow
def test_the_learning_curve_of_a_translation_run_is_the_quality_tables_bleu_at_each_step(
    translation_teacher,
):
    run, _ = load_run("causal", 0, translation_teacher)
    settings = run.config.eval.with_overrides({"learning_curve.num_examples": 24})
    found = learning_curve.evaluate(run, settings, lambda line: None)
    curve = found.pictures["learning_curve"]
    assert (curve["metric"], curve["steps"], curve["averaged_steps"]) == (
        "bleu",
        [1, 2, 3],
        [1, 2, 3],
    )
    assert all(0.0 <= value <= 100.0 for value in curve["values"])
    # The last point is the BLEU that the quality evaluator reports for the same prompts.
    settings = run.config.eval.with_overrides({"num_examples": 24})
    scored = quality.evaluate_generation(run, settings, lambda line: None)
    assert found.metrics["bleu_last"] == scored.metrics["bleu/ar_cache"]
