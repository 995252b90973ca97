"""The bad-input battery of the command line: what a user can get wrong, one test per case,
grouped by entry point (the Python API's cases are in test_bad_input_api.py).

Every command-line case must end in one line on stderr, `<program>: <what is wrong>`, with no
traceback, and must leave the disk as it was. Checkpoint damage, locks, Ctrl-C, SIGTERM,
--overwrite and non-finite losses are tested where they live (test_loop.py, test_checkpoints.py,
test_run_lock.py).
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import cpu_devices_env, tmpfs

from training import run_lock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*command: str, cwd: str = REPO, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _one_line(result: subprocess.CompletedProcess, program: str, *fragments: str) -> None:
    """Exit code 1 or 2, and stderr ends in one `program: ...` line naming every fragment."""
    assert result.returncode in (1, 2), result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{program}: "), result.stderr[-2000:]
    for fragment in fragments:
        assert fragment in last, last


# train.py ----------------------------------------------------------------------------------

BAD_CONFIG = {
    "mistyped key": (["--config.train.num_stepz=5"], 'Did you mean "num_steps"'),
    "not an int": (["--config.train.num_steps=2.5"], "num_steps"),
    "unknown variant": (["--variant=casual"], "Unknown variant 'casual'"),
    "max_len below the task": (["--config.model.max_len=5"], "model.max_len=5"),
    "symbols beyond the vocabulary": (
        ["--config.model.vocab_size=12", "--config.data.num_symbols=16"],
        "model.vocab_size=12",
    ),
    "negative learning rate": (["--config.train.learning_rate=-1"], "train.learning_rate"),
    "negative warmup": (["--config.train.warmup_steps=-5"], "train.warmup_steps"),
    "no eval batches": (["--config.train.eval_batches=0"], "train.eval_batches"),
    "an EMA decay of 1": (["--config.train.ema_decay=1"], "train.ema_decay must be in [0, 1)"),
    "unknown eval decoder": (["--config.eval.decoders=('AR (cahce)',)"], "Unknown decoders"),
    "sequential training in bf16 on CPU": (
        ["--config.train.objective=sequential", "--config.model.dtype=bfloat16"],
        "use model.dtype='float32' on CPU",
    ),
    "a negative vocabulary size": (["--config.data.vocab_size=-5"], "data.vocab_size must be >= 0"),
    "a length head that would never train": (
        ["--config.model.length_head=True"],
        "model.length_head=True is trained only by the objectives ('masked', 'glancing', "
        "'diffusion')",
    ),
    "TFDS data not prepared": (
        ["--config.data.task=tfds_text", "--config.data.data_dir=/nonexistent/tfds"],
        "data.data_dir",
    ),
}


# Each case starts a Python process (~5 s): the fast run keeps one, `make test-all` runs all.
@pytest.mark.parametrize(
    "case",
    [c if c == "mistyped key" else pytest.param(c, marks=pytest.mark.slow) for c in BAD_CONFIG],
)
def test_train_py_refuses_a_bad_config_in_one_line_and_writes_nothing(case, tmp_path):
    flags, fragment = BAD_CONFIG[case]
    workdir = tmp_path / "run"
    # On CPU on any machine: one of the refusals (sequential bf16) is the CPU's.
    result = _run(
        "train.py", "--config=experiments/tiny.py", f"--workdir={workdir}", *flags,
        env=cpu_devices_env(1),
    )  # fmt: skip
    _one_line(result, "train.py", fragment)
    assert not workdir.exists()


@pytest.mark.slow
def test_train_py_names_a_missing_config_file(tmp_path):
    result = _run("train.py", "--config=experiments/nope.py", f"--workdir={tmp_path / 'w'}")
    _one_line(result, "train.py", "experiments/nope.py")


@pytest.mark.slow
def test_train_py_names_a_config_file_that_does_not_parse(tmp_path):
    (tmp_path / "broken.py").write_text("def get_config(:\n")
    result = _run("train.py", f"--config={tmp_path / 'broken.py'}", f"--workdir={tmp_path / 'w'}")
    _one_line(result, "train.py", "invalid syntax")


@pytest.mark.slow
def test_train_py_refuses_a_workdir_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = _run("train.py", "--config=experiments/tiny.py", f"--workdir={tmp_path / 'file'}")
    _one_line(result, "train.py", "is a file")
    assert (tmp_path / "file").read_text() == "not a folder"


@pytest.mark.slow
def test_train_py_refuses_a_workdir_inside_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    result = _run("train.py", "--config=experiments/tiny.py", f"--workdir={tmp_path}/file/run")
    _one_line(result, "train.py", "is a file")


@pytest.mark.slow
def test_verbose_shows_the_traceback_for_bug_reports(tmp_path):
    result = _run(
        "train.py", "--config=experiments/tiny.py", f"--workdir={tmp_path}", "--verbose",
        "--config.train.learning_rate=-1",
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" in result.stderr


# eval.py -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_eval_py_names_a_missing_workdir(tmp_path):
    _one_line(_run("eval.py", f"--workdir={tmp_path / 'nope'}"), "eval.py", "train first")


@pytest.mark.slow
def test_eval_py_names_a_damaged_experiment_json(tmp_path):
    (tmp_path / "experiment.json").write_text('{"name": "demo", "eval": {"num_ex')
    _one_line(_run("eval.py", f"--workdir={tmp_path}"), "eval.py", "experiment.json is damaged")


@pytest.mark.slow
def test_eval_py_names_a_damaged_run_config(tmp_path):
    run = tmp_path / "causal" / "seed_0"
    (run / "checkpoints" / "10").mkdir(parents=True)
    (run / "config.json").write_text('{"model": ')
    _one_line(_run("eval.py", f"--workdir={tmp_path}"), "eval.py", "config.json is damaged")


@pytest.mark.slow
def test_eval_py_names_a_mistyped_eval_override(tmp_path):
    result = _run("eval.py", f"--workdir={tmp_path}", "--eval.num_examplez=8")
    _one_line(result, "eval.py", 'Did you mean "num_examples"')
    assert result.returncode == 2


@pytest.mark.slow
def test_eval_py_checks_eval_override_values(tmp_path):
    (tmp_path / "experiment.json").write_text("{}")
    result = _run("eval.py", f"--workdir={tmp_path}", "--eval.num_examples=0")
    _one_line(result, "eval.py", "eval.num_examples must be >= 1")


@pytest.mark.slow
def test_eval_py_takes_decoders_as_a_comma_list_and_says_did_you_mean(tmp_path):
    """--eval.decoders=ar_cache,beam4 was once read as one unknown id, with no hint."""
    (tmp_path / "experiment.json").write_text("{}")
    result = _run("eval.py", f"--workdir={tmp_path}", "--eval.decoders=ar_cache,beam5")
    _one_line(result, "eval.py", "Unknown decoders ['beam5']", "Did you mean 'beam4'?")


@pytest.mark.slow
def test_eval_py_names_an_unknown_evaluator(tmp_path):
    result = _run("eval.py", f"--workdir={tmp_path}", "--evaluators=leakage,speeed")
    _one_line(result, "eval.py", "Unknown evaluators ['speeed']")


@pytest.mark.slow
def test_eval_py_says_untrained_and_unfinished_variants_out_loud(tiny_workdir, tmp_path):
    workdir = tmp_path / "tiny"
    shutil.copytree(tiny_workdir, workdir)
    config = workdir / "causal" / "seed_0" / "config.json"
    saved = json.loads(config.read_text())
    saved["train"]["num_steps"] = 40  # As if the run had been killed at step 3 of 40.
    config.write_text(json.dumps(saved))
    result = _run("eval.py", f"--workdir={workdir}", "--evaluators=leakage", "--variants=causal")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "causal: evaluated at step 3 of 40" in result.stderr
    markdown = (workdir / "report" / "report.md").read_text()
    assert "evaluated at step 3 of 40" in markdown


# benchmarks and scripts --------------------------------------------------------------------

BAD_FLAGS = {
    "sampling, batch 0": (["-m", "benchmarks.sampling", "--batch_size=0"], "--batch_size=0"),
    "sampling, 0 repeats": (["-m", "benchmarks.sampling", "--repeats=0"], "--repeats=0"),
    "sampling, 0 new tokens": (["-m", "benchmarks.sampling", "--new_tokens=0"], "--new_tokens"),
    "sampling, unknown decoder": (["-m", "benchmarks.sampling", "--decoders=kv"], "['kv']"),
    "nar, batch 0": (["-m", "benchmarks.nar", "--batch_sizes=1,0"], "--batch_sizes"),
    "train_step, 0 steps": (["-m", "benchmarks.train_step", "--steps=0"], "--steps=0"),
    "a stray argument": (["-m", "benchmarks.nar", "oops"], "oops"),
    "ema, no run": (["-m", "benchmarks.ema", "--run=/nonexistent"], "/nonexistent/config.json"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_FLAGS)
def test_benchmarks_refuse_bad_flags_in_one_line(case):
    command, fragment = BAD_FLAGS[case]
    program = command[1].replace(".", "/") + ".py"
    _one_line(_run(*command), program, fragment)


@pytest.mark.slow
def test_prepare_data_names_an_unknown_dataset_and_a_close_match(tmp_path):
    result = _run("scripts/prepare_data.py", "--name=tiny_shakespear", f"--data_dir={tmp_path}")
    _one_line(result, "scripts/prepare_data.py", "did you mean tiny_shakespeare")


@pytest.mark.slow
def test_a_bible_pair_that_does_not_exist_is_one_line_naming_the_pairs_that_do(tmp_path):
    """TFDS's own error for a missing builder config once came with its full traceback."""
    result = _run("scripts/prepare_data.py", "--name=bible/en-fr", f"--data_dir={tmp_path}")
    _one_line(result, "scripts/prepare_data.py", "'bible' has no config 'en-fr'", "'en-es'")
    result = _run(
        "train.py", "--config=experiments/tiny.py", f"--workdir={tmp_path}/run",
        "--config.data.task=tfds_translation", "--config.data.tfds_name=bible/en-fr",
        f"--config.data.data_dir={tmp_path}", env=cpu_devices_env(1),
    )  # fmt: skip
    _one_line(result, "train.py", "data.tfds_name='bible/en-fr'", "its configs are ['en-es'")


# Issue #22: damaged files name themselves, late checks come first, nothing is lost ----------


def _distilled_folder(path) -> str:
    """A real distilled folder (two rows of the tiny config's copy task)."""
    from data import distilled
    from experiments import tiny

    config = tiny.get_config().data
    rows = {key: np.zeros((2, 16), np.int32) for key in distilled.KEYS}
    rows["lengths"] = rows["prefix_lengths"] = np.full((2,), 4, np.int32)
    distilled.write(str(path), rows, {"teacher": {"variant": "causal"}, "data": config.to_dict()})
    return str(path)


@pytest.mark.slow
def test_train_py_names_a_damaged_provenance_json(tmp_path):
    folder = _distilled_folder(tmp_path / "distilled")
    (tmp_path / "distilled" / "provenance.json").write_text('{"teacher": {"vari')
    result = _run(
        "train.py", "--config=experiments/tiny.py", f"--workdir={tmp_path / 'w'}",
        f"--config.data.distilled_dir={folder}",
    )  # fmt: skip
    _one_line(result, "train.py", f"{folder}/provenance.json is damaged", "distill.py")
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_train_py_names_a_truncated_distilled_train_npz(tmp_path):
    folder = _distilled_folder(tmp_path / "distilled")
    rows = tmp_path / "distilled" / "train.npz"
    os.truncate(rows, rows.stat().st_size // 2)
    result = _run(
        "train.py", "--config=experiments/tiny.py", f"--workdir={tmp_path / 'w'}",
        f"--config.data.distilled_dir={folder}",
    )  # fmt: skip
    _one_line(result, "train.py", f"{rows} is damaged", "distill.py")
    assert not (tmp_path / "w").exists()


# Not JSON, or not an object: store.read_results already named the file.
RESULTS = {
    "variants not a list": '{"schema_version": 3, "variants": "causal"}',
    "no variants": '{"schema_version": 3}',
}


@pytest.mark.slow
@pytest.mark.parametrize("case", RESULTS)
def test_eval_py_render_only_names_a_damaged_results_json(case, tmp_path):
    from evaluation.report.schema import SCHEMA_VERSION

    (tmp_path / "report").mkdir()
    results = tmp_path / "report" / "results.json"
    results.write_text(RESULTS[case].replace('"schema_version": 3', f'"schema_version": '
                                             f"{SCHEMA_VERSION}"))  # fmt: skip
    result = _run("eval.py", f"--workdir={tmp_path}", "--render_only")
    _one_line(result, "eval.py", str(results), "without --render_only")


@pytest.mark.slow
def test_eval_py_names_an_experiment_json_that_is_not_an_object(tmp_path):
    (tmp_path / "experiment.json").write_text("[]")
    result = _run("eval.py", f"--workdir={tmp_path}")
    _one_line(result, "eval.py", "experiment.json is damaged", "train.py rewrites it")


@pytest.mark.slow
def test_train_py_refuses_a_workdir_of_another_experiment(tmp_path):
    saved = json.dumps({"name": "tiny", "variants": {"causal": {}}})
    (tmp_path / "experiment.json").write_text(saved)
    for overwrite in ([], ["--overwrite"]):
        result = _run(
            "train.py", "--config=experiments/demo.py", f"--workdir={tmp_path}", *overwrite,
            env=cpu_devices_env(1),
        )  # fmt: skip
        _one_line(result, "train.py", "holds the experiment 'tiny'", "not 'demo'")
    assert (tmp_path / "experiment.json").read_text() == saved
    assert os.listdir(tmp_path) == ["experiment.json"]


@pytest.mark.slow
def test_a_narrower_eval_keeps_what_it_did_not_recompute_and_says_so(tiny_workdir, tmp_path):
    """A second eval with other evaluators and fewer variants once replaced results.json whole:
    the first eval's metrics vanished, and leaving out evaluators said nothing."""
    workdir = tmp_path / "tiny"
    shutil.copytree(tiny_workdir, workdir)
    for flags in (["--evaluators=loss", "--variants=causal,full"],
                  ["--evaluators=leakage", "--variants=full"]):  # fmt: skip
        result = _run("eval.py", f"--workdir={workdir}", *flags)
        assert result.returncode == 0, result.stderr[-2000:]
    with open(workdir / "report" / "results.json", encoding="utf-8") as f:
        records = {r["name"]: r for r in json.load(f)["variants"]}
    assert {"loss_honest", "perturbation_leakage"} <= set(records["full"]["metrics"])
    assert "loss_honest" in records["causal"]["metrics"]  # Not evaluated again: kept whole.
    assert "loss_honest" in records["full"]["carried"]
    assert "kept: causal: not evaluated this time" in result.stderr
    assert "kept: full: kept loss_teacher_forced, loss_honest" in result.stderr


@pytest.mark.slow
def test_a_second_eval_on_one_workdir_is_refused_in_one_line(tmp_path):
    """Two evals at once once both wrote the report, and the last writer won."""
    with run_lock.hold(str(tmp_path), eval_lock=True):
        result = _run("eval.py", f"--workdir={tmp_path}")
    _one_line(result, "eval.py", f"{tmp_path} is in use by pid {os.getpid()}", "eval")
    assert not (tmp_path / "report").exists()


@pytest.mark.slow
def test_eval_py_names_a_damaged_only_checkpoint_in_one_line(tiny_workdir, tmp_path):
    """Orbax's threads once printed ~250 lines of 'Event loop is closed' tracebacks here."""
    workdir = tmp_path / "tiny"
    shutil.copytree(tiny_workdir, workdir)
    checkpoints = workdir / "causal" / "seed_0" / "checkpoints"
    for folder, _, files in os.walk(checkpoints):
        for name in files:
            if f"{os.sep}d" in folder:  # TensorStore's data files, not the JSON metadata.
                os.truncate(os.path.join(folder, name), 0)
    result = _run("eval.py", f"--workdir={workdir}", "--evaluators=loss", "--variants=causal")
    _one_line(result, "eval.py", "No readable checkpoint")
    assert len(result.stderr.strip().splitlines()) <= 4, result.stderr[-3000:]


@pytest.mark.slow
def test_distill_py_refuses_an_out_inside_a_runs_checkpoints(tiny_workdir):
    run = os.path.join(tiny_workdir, "causal", "seed_0")
    out = os.path.join(run, "checkpoints", "distilled")
    result = _run("distill.py", f"--teacher={run}", f"--out={out}")
    _one_line(result, "distill.py", "holds a run's checkpoints")
    assert not os.path.exists(out)


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nothing can be written to, root included (a read-only tmpfs when root)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    with tmpfs(folder, "ro,size=1m"):
        yield folder


@pytest.mark.slow
def test_eval_py_checks_a_read_only_workdir_before_evaluating(read_only_folder):
    result = _run("eval.py", f"--workdir={read_only_folder}")
    _one_line(result, "eval.py", "is not writable")
    assert "[eval" not in result.stderr  # Refused before any evaluation began.


@pytest.mark.slow
def test_distill_py_checks_a_read_only_out_before_decoding(tiny_workdir, read_only_folder):
    run = os.path.join(tiny_workdir, "causal", "seed_0")
    result = _run("distill.py", f"--teacher={run}", f"--out={read_only_folder / 'd'}")
    _one_line(result, "distill.py", "is not writable")
    assert "distill: " not in result.stderr  # Refused before a row was decoded.
