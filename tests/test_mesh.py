"""Several processes (training/mesh.py): two train.py processes on localhost, joined through
jax.distributed (gloo collectives on CPU), train as one run and can be evaluated anywhere."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import cpu_devices_env

from training import run_folder
from training.checkpoints import load_params
from training.processes import TIMEOUT_ENV

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "train.py", "--config=experiments/tiny.py", "--variant=causal",
    "--config.train.peak_flops_per_device=1e11", "--config.train.eval_every=0",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(
    workdir,
    steps: int,
    processes: int = 2,
    *,
    started: tuple[int, ...] | None = None,
    port: int | None = None,
    flags: dict[int, list[str]] | None = None,
    timeout_s: int = 300,
) -> list[subprocess.Popen]:
    """train.py as `processes` processes on localhost (only the ids in `started`, if given), each
    with its extra `flags`; start-up waits `timeout_s` (JAX_INITIALIZATION_TIMEOUT)."""
    port = port or _free_port()
    return [
        subprocess.Popen(
            [
                sys.executable,
                *TINY,
                f"--workdir={workdir}",
                f"--config.train.num_steps={steps}",
                *(flags or {}).get(i, []),
            ],
            cwd=REPO,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={
                **cpu_devices_env(1),
                "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
                "JAX_NUM_PROCESSES": str(processes),
                "JAX_PROCESS_ID": str(i),
                TIMEOUT_ENV: str(timeout_s),
            },
        )  # fmt: skip
        for i in (range(processes) if started is None else started)
    ]


def _outcomes(processes, timeout: float = 60) -> list[tuple[int, str]]:
    """(exit code, stderr) of each process; a process still running after `timeout` seconds
    (a hang) fails the test, after every process is killed."""
    deadline, outcomes = time.time() + timeout, []
    try:
        for process in processes:
            _, stderr = process.communicate(timeout=max(deadline - time.time(), 0.1))
            outcomes.append((process.returncode, stderr))
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        hung = [process.communicate()[1][-2000:] for process in processes[len(outcomes) :]]
        pytest.fail(f"still running after {timeout} s: {outcomes}, then {hung}")
    return outcomes


def _finish(processes) -> list[str]:
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
    return [stdout for stdout, _ in outputs]


def _losses(workdir) -> dict[int, float]:
    with open(run_folder.metrics_path(run_folder.run_dir(str(workdir), "causal", 0))) as f:
        rows = [json.loads(line) for line in f]
    steps = [row["step"] for row in rows if row["split"] == "train"]
    assert len(steps) == len(set(steps))  # One writer: each step logged once.
    return {row["step"]: row["loss"] for row in rows if row["split"] == "train"}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("one")
    result = subprocess.run([sys.executable, *TINY, f"--workdir={workdir}",
                             "--config.train.num_steps=40"], cwd=REPO, capture_output=True,
                            text=True, timeout=120, env=cpu_devices_env(1))  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


@pytest.mark.slow
def test_two_processes_train_like_one_and_the_run_evaluates_on_one_device(one_process, tmp_path):
    stdouts = _finish(_launch(tmp_path, steps=40))
    assert all("finished at step 40" in out for out in stdouts)
    run = run_folder.run_dir(str(tmp_path), "causal", 0)
    assert run_folder.checkpoint_steps(run) == [30, 40]  # Written once, kept as configured.
    assert sorted(os.listdir(tmp_path)) == ["causal", "experiment.json"]  # Lock released.
    # The same global batch of 16, split 8 + 8 over two processes: the loss curve is the
    # one-process curve up to the order of fp32 sums (the 8-device test's tolerance).
    one, two = _losses(one_process), _losses(tmp_path)
    assert sorted(one) == sorted(two) == [10, 20, 30, 40]
    np.testing.assert_allclose([two[s] for s in sorted(two)], [one[s] for s in sorted(one)],
                               rtol=1e-3)  # fmt: skip
    # Saved by two processes, restored here on one device (Orbax's topology check passes).
    model, _, _, step = load_params(run)
    reference, _, _, _ = load_params(run_folder.run_dir(str(one_process), "causal", 0))
    assert step == 40
    np.testing.assert_allclose(np.asarray(model.lm_head.kernel.value),
                               np.asarray(reference.lm_head.kernel.value), atol=1e-2)  # fmt: skip


@pytest.mark.slow
def test_killing_both_processes_then_rerunning_resumes(tmp_path):
    processes = _launch(tmp_path, steps=150)
    run = run_folder.run_dir(str(tmp_path), "causal", 0)
    deadline = time.time() + 120
    while not run_folder.checkpoint_steps(run):
        assert all(p.poll() is None for p in processes), processes[0].communicate()[1][-3000:]
        assert time.time() < deadline
        time.sleep(0.01)
    for process in processes:
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed_at = run_folder.checkpoint_steps(run)[-1]
    assert killed_at < 150
    stdouts = _finish(_launch(tmp_path, steps=150))
    assert f"resuming at step {killed_at}" in stdouts[0]
    assert all("finished at step 150" in out for out in stdouts)


SHARD_CHECK = """
import json
import sys
import jax
from experiments import tiny
from plan import make_plan
from training import mesh as mesh_lib
from training.step import Hyperparams, init_train_state, make_optimizer
experiment = tiny.get_config()
experiment.train.ema_decay = float(sys.argv[1])
config = make_plan(experiment, "causal")
hparams = Hyperparams.from_config(config.train)
_, params, opt_state = init_train_state(config.model, hparams, 0)
mesh = mesh_lib.make_mesh(fsdp=4)
shardings = mesh_lib.state_shardings(make_optimizer(hparams), params, opt_state, mesh)
params, opt_state = jax.device_put((params, opt_state), shardings)
rows = [
    {"path": jax.tree_util.keystr(path), "shape": list(x.shape),
     "shard": list(x.addressable_shards[0].data.shape), "devices": len(x.sharding.device_set)}
    for tree in (params, opt_state)
    for path, x in jax.tree_util.tree_leaves_with_path(tree)
]
print(json.dumps({"mesh": dict(mesh.shape), "rows": rows}))
"""


def _shard_check(ema_decay: float) -> dict:
    """SHARD_CHECK's findings: each leaf of the state on the fsdp=4 x data=2 mesh."""
    result = subprocess.run(
        [sys.executable, "-c", SHARD_CHECK, str(ema_decay)], cwd=REPO, capture_output=True,
        text=True, timeout=120, env=cpu_devices_env(8),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_fsdp_gives_each_device_a_quarter_of_every_tensor_that_splits():
    found = _shard_check(0.0)
    assert found["mesh"] == {"data": 2, "fsdp": 4}
    tensors = [row for row in found["rows"] if row["shape"]]  # Not Adam's step counter.
    assert len(tensors) == 3 * 30  # 30 params, and Adam's two moments of each.
    for row in tensors:
        assert row["devices"] == 8
        if any(n % 4 == 0 for n in row["shape"]):  # Split along one dimension into 4.
            split = [
                i for i, (n, m) in enumerate(zip(row["shape"], row["shard"], strict=True)) if n != m
            ]
            assert len(split) == 1 and row["shard"][split[0]] * 4 == row["shape"][split[0]], row
        else:  # Nothing divides by 4 (the 21-entry vocabulary bias): replicated.
            assert row["shard"] == row["shape"], row


@pytest.mark.slow
def test_fsdp_shards_the_ema_of_the_params_as_the_params():
    rows = _shard_check(0.9999)["rows"]
    params = [row for row in rows if row["path"].startswith("['")]  # Not opt_state's [0], [1]...
    averaged = [row for row in rows if ".ema[" in row["path"]]
    assert len(params) == len(averaged) == 30
    for param, average in zip(params, averaged, strict=True):
        assert average["path"].endswith(param["path"]), (average, param)
        assert (average["shape"], average["shard"], average["devices"]) == (
            param["shape"], param["shard"], param["devices"],
        )  # fmt: skip


@pytest.mark.slow
def test_fsdp_on_eight_devices_trains_like_one_and_moves_between_meshes(one_process, tmp_path):
    flags = ["--config.train.num_steps=40", "--config.mesh.fsdp=4"]
    env = cpu_devices_env(8)
    result = subprocess.run([sys.executable, *TINY, f"--workdir={tmp_path / 'fsdp'}", *flags],
                            cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    one, fsdp = _losses(one_process), _losses(tmp_path / "fsdp")
    np.testing.assert_allclose([fsdp[s] for s in sorted(fsdp)], [one[s] for s in sorted(one)],
                               rtol=1e-3)  # fmt: skip
    # Saved sharded over 8 devices, restored on one: eval works anywhere.
    assert load_params(run_folder.run_dir(str(tmp_path / "fsdp"), "causal", 0))[3] == 40
    # Saved by one device, resumed sharded 4 ways: drop the last checkpoint and finish again.
    moved = tmp_path / "moved"
    shutil.copytree(one_process, moved)
    run = run_folder.run_dir(str(moved), "causal", 0)
    shutil.rmtree(os.path.join(run_folder.checkpoint_dir(run), "40"))
    result = subprocess.run([sys.executable, *TINY, f"--workdir={moved}", *flags], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming at step 30" in result.stdout
    np.testing.assert_allclose(_losses(moved)[40], one[40], rtol=1e-3)
