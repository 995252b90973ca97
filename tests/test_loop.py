"""train.py end to end, in subprocesses: exact resume after SIGKILL, 8 devices == 1 device,
SIGTERM, a non-finite loss, config typos and mismatched resumes.

Every run shares one persistent compilation cache, and the optimizer settings are traced, so the
tiny train step compiles once for all the 1-device runs below.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import cpu_devices_env, tmpfs

from training.checkpoints import load_params

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 100  # Long enough to kill a run between its first checkpoint (10) and its end.
TINY = [
    "--config=experiments/tiny.py",
    "--variant=causal",
    f"--config.train.num_steps={STEPS}",
    "--config.train.eval_every=50",
    "--config.train.peak_flops_per_device=1e11",  # Skip the peak benchmark: not under test.
]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    cache = tmp_path_factory.mktemp("jax_cache")
    # On CPU on every machine: runs on 1 and on 8 devices are compared, and resumed runs too.
    return cpu_devices_env(1, {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    })  # fmt: skip


def _train(workdir, *flags, env, devices: int = 1, check=True) -> subprocess.CompletedProcess:
    env = cpu_devices_env(devices, env)
    result = subprocess.run(
        [sys.executable, "train.py", f"--workdir={workdir}", *TINY, *flags],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def _popen(workdir, *flags, env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "train.py", f"--workdir={workdir}", *TINY, *flags],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for(predicate, process, timeout=60.0):
    deadline = time.time() + timeout
    while not predicate():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.time() < deadline, "timed out"
        time.sleep(0.005)


def _run_dir(workdir):
    return os.path.join(workdir, "causal", "seed_0")


def _steps(workdir):
    directory = os.path.join(_run_dir(workdir), "checkpoints")
    return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def _losses(workdir, split="train"):
    with open(os.path.join(_run_dir(workdir), "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return {row["step"]: row["loss"] for row in rows if row["split"] == split}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    """An uninterrupted run."""
    workdir = str(tmp_path_factory.mktemp("reference"))
    _train(workdir, env=env)
    return workdir


def _kill_then_resume(workdir: str, reference: str, *flags: str, env) -> None:
    """SIGKILLs a run after its first checkpoint, reruns it, and checks that it ends bitwise
    equal to `reference`: the evaluated params (the EMA, for a run that keeps one) and every
    logged loss."""
    process = _popen(workdir, *flags, env=env)
    checkpoint_dir = os.path.join(_run_dir(workdir), "checkpoints")
    _wait_for(lambda: os.path.isdir(os.path.join(checkpoint_dir, "10")), process)
    process.kill()
    process.wait()
    killed_at = _steps(workdir)
    assert killed_at and killed_at[-1] < STEPS, killed_at  # It really stopped part-way.
    resumed = _train(workdir, *flags, env=env)
    assert f"resuming at step {killed_at[-1]}" in resumed.stdout
    model, _, _, step = load_params(_run_dir(workdir))
    reference_model, _, _, reference_step = load_params(_run_dir(reference))
    assert step == reference_step == STEPS
    leaves = jax.tree.leaves(model)
    reference_leaves = jax.tree.leaves(reference_model)
    assert len(leaves) == len(reference_leaves) > 0
    for leaf, reference_leaf in zip(leaves, reference_leaves, strict=True):
        np.testing.assert_array_equal(np.asarray(leaf), np.asarray(reference_leaf))
    # The resumed metrics.jsonl holds every logged step once, with the reference's values.
    assert _losses(workdir) == _losses(reference)
    assert _losses(workdir, "eval") == _losses(reference, "eval")


def test_sigkill_then_resume_is_bitwise_equal_to_an_uninterrupted_run(reference, tmp_path, env):
    _kill_then_resume(str(tmp_path), reference, env=env)


EMA = "--config.train.ema_decay=0.9999"


@pytest.fixture(scope="module")
def ema_reference(tmp_path_factory, env):
    """An uninterrupted run that keeps an EMA of its params."""
    workdir = str(tmp_path_factory.mktemp("ema_reference"))
    _train(workdir, EMA, env=env)
    return workdir


@pytest.mark.slow
def test_sigkill_then_resume_with_an_ema_is_bitwise_equal_to_an_uninterrupted_run(
    ema_reference, reference, tmp_path, env
):
    """The EMA is restored with the rest of the state: eval reads it, bitwise the reference's,
    and the held-out losses (of the EMA) are the reference's."""
    _kill_then_resume(str(tmp_path), ema_reference, EMA, env=env)
    # The EMA changes no update (to rounding: XLA may fuse the two programs' updates apart).
    with_ema, without = _losses(ema_reference), _losses(reference)
    assert sorted(with_ema) == sorted(without)
    np.testing.assert_allclose([with_ema[s] for s in sorted(with_ema)],
                               [without[s] for s in sorted(without)], rtol=1e-6)  # fmt: skip
    assert _losses(ema_reference, "eval") != _losses(reference, "eval")


@pytest.mark.slow
def test_eight_devices_match_one_device(reference, tmp_path, env):
    # No evals or intermediate checkpoints: they do not change the losses, and they cost time.
    _train(str(tmp_path), "--config.train.eval_every=0", "--config.train.checkpoint_every=1000",
           env=env, devices=8)  # fmt: skip
    one, eight = _losses(reference), _losses(str(tmp_path))
    assert sorted(one) == sorted(eight) == list(range(10, STEPS + 1, 10))
    # Same data, same init, same maths: only the order of the fp32 sums changes (per-device
    # partial sums, then an all-reduce), ~1e-7 relative per reduction. Over 100 Adam steps that
    # grows to ~1e-5; 1e-3 is 100x that, and 50x below the loss drop between two log lines.
    np.testing.assert_allclose([eight[s] for s in sorted(eight)], [one[s] for s in sorted(one)],
                               rtol=1e-3)  # fmt: skip
    assert one[10] - one[STEPS] > 0.5  # The curves being compared do move.


def _signal_a_long_run(workdir: str, sig: int, env) -> tuple[int, str, str]:
    """Starts a run too long to finish, sends `sig` once it has logged, and waits for it."""
    process = _popen(
        workdir, "--config.train.num_steps=100000", "--config.train.checkpoint_every=100000",
        env=env,
    )  # fmt: skip
    metrics_path = os.path.join(_run_dir(workdir), "metrics.jsonl")
    _wait_for(lambda: os.path.exists(metrics_path) and os.path.getsize(metrics_path), process)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, stderr


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path, env):
    workdir = str(tmp_path)
    returncode, stdout, stderr = _signal_a_long_run(workdir, signal.SIGTERM, env)
    assert returncode == 0, stderr[-3000:]
    assert "SIGTERM" in stdout
    (step,) = _steps(workdir)
    assert 10 <= step < 100000
    _, _, _, restored_step = load_params(_run_dir(workdir))
    assert restored_step == step


@pytest.mark.slow
def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, env):
    # AdamW's decoupled weight decay with lr x wd = 3e-3 x 2500 = 7.5 multiplies every matrix
    # by about -6.5 per step: the params overflow a few steps after the checkpoint at step 10.
    result = _train(
        str(tmp_path), "--config.train.warmup_steps=0", "--config.train.weight_decay=2500",
        env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert re.search(r"Non-finite training metrics at step 1[1-9] ", result.stderr), result.stderr
    assert "Last good checkpoint: step 10 " in result.stderr
    assert _steps(str(tmp_path)) == [10]
    model, _, _, _ = load_params(_run_dir(str(tmp_path)))
    assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in jax.tree.leaves(model))


@pytest.mark.slow
def test_a_mistyped_config_override_fails_at_once(tmp_path, env):
    result = _train(str(tmp_path), "--config.train.num_stepz=5", env=env, check=False)
    assert result.returncode != 0
    assert "num_stepz" in result.stderr
    assert not os.path.exists(_run_dir(str(tmp_path)))


@pytest.mark.slow
def test_a_mismatched_resume_is_refused_and_overwrite_allows_it(reference, tmp_path, env):
    workdir = str(tmp_path / "run")
    shutil.copytree(reference, workdir)
    experiment = (tmp_path / "run" / "experiment.json").read_bytes()
    refused = _train(workdir, "--config.data.seed=1", env=env, check=False)
    assert refused.returncode == 1
    assert "data.seed: 0 -> 1" in refused.stderr and "--overwrite" in refused.stderr
    assert _steps(workdir) == _steps(reference)  # Untouched, experiment.json included.
    assert (tmp_path / "run" / "experiment.json").read_bytes() == experiment
    _train(workdir, "--config.data.seed=1", "--config.train.num_steps=20", "--overwrite", env=env)
    _, _, config, step = load_params(_run_dir(workdir))
    assert (config.data.seed, step) == (1, 20)


@pytest.mark.slow
def test_overwrite_wipes_nothing_when_a_later_check_fails(reference, tmp_path, env):
    """The data loss once seen: --overwrite wiped a finished run, then the batch did not split
    over the devices. Every check now runs before anything is written or wiped."""
    workdir = str(tmp_path / "run")
    shutil.copytree(reference, workdir)
    failed = _train(workdir, "--config.data.seed=1", "--overwrite", env=env, devices=3, check=False)
    assert failed.returncode == 1
    assert "divisible by the 3 devices" in failed.stderr and "Traceback" not in failed.stderr
    assert _steps(workdir) == _steps(reference) and _losses(workdir) == _losses(reference)


@pytest.mark.slow
def test_ctrl_c_saves_then_stops_and_a_second_ctrl_c_aborts_at_once(tmp_path, env):
    workdir = str(tmp_path)
    returncode, stdout, stderr = _signal_a_long_run(workdir, signal.SIGINT, env)
    assert returncode == 130, stderr[-3000:]
    assert "stopped by Ctrl-C" in stdout and "Traceback" not in stderr
    (step,) = _steps(workdir)
    assert 10 <= step < 100000 and load_params(_run_dir(workdir))[3] == step
    assert not os.path.exists(os.path.join(workdir, ".lock"))  # Released.
    # Twice: the second press stops without waiting for a save, in one line.
    process = _popen(workdir, "--config.train.num_steps=100000", env=env)
    _wait_for(lambda: os.path.exists(os.path.join(workdir, ".lock")), process)
    time.sleep(1.0)  # Into the training loop.
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "Traceback" not in stderr, stderr[-3000:]
    assert not os.path.exists(os.path.join(workdir, ".lock"))


@pytest.mark.slow
def test_a_second_training_on_the_same_workdir_is_refused_and_names_the_first(tmp_path, env):
    workdir = str(tmp_path)
    first = _popen(workdir, "--config.train.num_steps=100000", env=env)
    try:
        _wait_for(lambda: os.path.exists(os.path.join(workdir, ".lock")), first)
        second = _train(workdir, env=env, check=False)
        assert second.returncode == 1
        assert f"in use by pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)


@pytest.mark.slow
def test_resume_falls_back_past_a_damaged_newest_checkpoint(reference, tmp_path, env):
    workdir = str(tmp_path / "run")
    shutil.copytree(reference, workdir)
    newest = os.path.join(_run_dir(workdir), "checkpoints", str(STEPS), "params")
    for folder, _, files in os.walk(newest):
        for name in files:
            if f"{os.sep}d" in folder:  # TensorStore's data files: the read fails mid-restore.
                os.truncate(os.path.join(folder, name), 0)
    resumed = _train(workdir, env=env)
    assert f"checkpoint step {STEPS}" in resumed.stderr and "resuming at step 90" in resumed.stdout
    # The warning and the note of the move, and nothing else: Orbax's reads left in flight once
    # printed ~160 lines of "Event loop is closed" tracebacks from TensorStore's threads.
    assert "Traceback" not in resumed.stderr, resumed.stderr[-3000:]
    assert len(resumed.stderr.strip().splitlines()) == 2, resumed.stderr[-3000:]
    # From the older checkpoint the run is recomputed exactly: it ends bitwise as the reference.
    model, reference_model = load_params(_run_dir(workdir))[0], load_params(_run_dir(reference))[0]
    for leaf, reference_leaf in zip(jax.tree.leaves(model), jax.tree.leaves(reference_model),
                                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(leaf), np.asarray(reference_leaf))


@pytest.mark.slow
def test_a_finished_run_whose_checkpoints_were_deleted_still_refuses_another_config(
    reference, tmp_path, env
):
    workdir = str(tmp_path / "run")
    shutil.copytree(reference, workdir)
    shutil.rmtree(os.path.join(_run_dir(workdir), "checkpoints"))
    config = (tmp_path / "run" / "causal" / "seed_0" / "config.json").read_bytes()
    refused = _train(workdir, "--config.data.seed=1", env=env, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "data.seed: 0 -> 1" in refused.stderr and "--overwrite" in refused.stderr
    assert _losses(workdir) == _losses(reference)  # metrics.jsonl and config.json kept.
    assert (tmp_path / "run" / "causal" / "seed_0" / "config.json").read_bytes() == config


@pytest.mark.slow
def test_rerunning_a_finished_run_says_so_instead_of_a_loss_of_none(reference, tmp_path, env):
    workdir = str(tmp_path / "run")
    shutil.copytree(reference, workdir)
    again = _train(workdir, env=env)
    assert f"finished at step {STEPS} (already trained before)" in again.stdout
    assert "None" not in again.stdout


@pytest.fixture
def small_disk(tmp_path):
    """A 600 kB tmpfs: room for one tiny checkpoint, not two (root only)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    with tmpfs(folder, "size=600k"):
        yield folder


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_write_ends_in_one_line(small_disk, env):
    """A real ENOSPC from TensorStore's writer threads; it once printed 526 lines."""
    workdir = str(small_disk / "run")
    result = _train(workdir, "--config.train.num_steps=20", env=env, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("train.py: Saving a checkpoint in ") and "no space left" in last
    assert "resumes from step 10" in last
    assert result.stderr.count("\n") <= 2, result.stderr[-3000:]
