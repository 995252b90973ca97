"""Several processes (training/processes.py): start-up names a missing process or a port in
use in one line within the timeout, and processes that planned different runs all stop, naming
the keys; two real processes on localhost where it matters."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import cpu_devices_env
from test_mesh import REPO, _free_port, _launch, _outcomes

from training.processes import TIMEOUT_ENV, plan_mismatch_line


def _last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1] if stderr.strip() else ""


@pytest.mark.slow
def test_a_process_that_never_starts_is_named_within_the_timeout(tmp_path):
    # Alone, process 0 waits for process 1 and process 1 for process 0; JAX alone waited 300 s,
    # then aborted in a stack dump that never said a process was missing.
    started = time.time()
    alone = _launch(tmp_path / "a", 2, started=(0,), timeout_s=2)
    alone += _launch(tmp_path / "b", 2, started=(1,), timeout_s=2)
    (code_0, stderr_0), (code_1, stderr_1) = _outcomes(alone)
    assert time.time() - started < 50
    for code, stderr, me in ((code_0, stderr_0, 0), (code_1, stderr_1, 1)):
        assert code == 1, stderr[-3000:]
        lines = stderr.strip().splitlines()
        assert len(lines) == 2, stderr[-3000:]  # The wait, said at once; then why it ended.
        assert lines[0].startswith(f"process {me} of 2: waiting up to 2 s for 2 processes to join")
    assert "start-up gave up after 2 s: process 1 of 2 never joined 127.0.0.1:" in stderr_0
    assert "process 0 (the coordinator) never answered at 127.0.0.1:" in stderr_1


@pytest.mark.slow
def test_a_coordinator_port_in_use_is_refused_and_no_process_hangs(tmp_path):
    # Before: process 0 segfaulted, and process 1 hung on whatever held the port.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        (code_0, stderr_0), (code_1, stderr_1) = _outcomes(
            _launch(tmp_path, 2, port=port, timeout_s=2)
        )
    assert code_0 == 1 and code_1 == 1, (stderr_0[-3000:], stderr_1[-3000:])
    assert _last_line(stderr_0) == (
        f"train.py: coordinator port {port} is already in use on process 0's host: stop what "
        "holds it (an earlier run?), or give every process a free port in "
        "JAX_COORDINATOR_ADDRESS."
    )
    assert _last_line(stderr_1).startswith(
        f"train.py: start-up gave up: no answer at 127.0.0.1:{port}"
    )
    assert f"something other than this run's process 0 holds port {port}" in stderr_1


def test_a_plan_mismatch_is_one_line_naming_each_key_and_who_has_which_value():
    one = {"causal/seed_0 train.batch_size": 16, "causal/seed_0 train.num_steps": 20}
    line = plan_mismatch_line([
        one,
        {**one, "causal/seed_0 train.batch_size": 32},
        {**one, "causal/seed_0 train.num_steps": 30, "full/seed_0 train.num_steps": 30},
    ])  # fmt: skip
    assert line == (
        "the 3 processes planned different runs: causal/seed_0 train.batch_size is 16 on "
        "processes 0, 2, 32 on process 1; causal/seed_0 train.num_steps is 20 on processes 0, 1, "
        "30 on process 2; full/seed_0 train.num_steps is absent on processes 0, 1, 30 on process 2;"
        " every process must run the same command, with the same config and flags."
    )
    many = plan_mismatch_line([{f"k{i}": 0 for i in range(5)}, {}], shown=2)
    assert "k0 is 0 on process 0, absent on process 1; k1 is" in many
    assert many.count(" is ") == 2 and "(and 3 more keys)" in many


PLAN_CHECK = """
import json, os
from experiments import tiny
from plan import make_plan
from training import processes
processes.initialize_distributed()
config = tiny.get_config()
processes.check_same_plan_everywhere([make_plan(config, "causal", 0)])  # The same: passes.
config.train.batch_size = 16 * (1 + int(os.environ["JAX_PROCESS_ID"]))
try:
    processes.check_same_plan_everywhere([make_plan(config, "causal", 0)])
except ValueError as error:
    print(json.dumps(str(error)))
"""


@pytest.mark.slow
def test_processes_with_different_plans_all_stop_naming_the_keys():
    # Before: batch 16 and 32 both trained and exited 0 (config.json recorded one of them);
    # num_steps 20 and 30 hung one process until crash dumps 5 minutes later.
    port = _free_port()
    processes = [
        subprocess.Popen([sys.executable, "-c", PLAN_CHECK], cwd=REPO, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**cpu_devices_env(1), "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
                              "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(i),
                              TIMEOUT_ENV: "60"})
        for i in range(2)
    ]  # fmt: skip
    outputs = [process.communicate(timeout=120) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
        assert json.loads(stdout.strip().splitlines()[-1]) == (
            "the 2 processes planned different runs: causal/seed_0 train.batch_size is 16 on "
            "process 0, 32 on process 1; every process must run the same command, with the same "
            "config and flags."
        )


@pytest.mark.slow
def test_train_py_processes_started_with_different_batch_sizes_both_refuse(tmp_path):
    processes = _launch(tmp_path, 2, flags={1: ["--config.train.batch_size=32"]}, timeout_s=60)
    for code, stderr in _outcomes(processes, timeout=120):
        assert code == 1, stderr[-3000:]
        assert _last_line(stderr) == (
            "train.py: the 2 processes planned different runs: causal/seed_0 train.batch_size is "
            "16 on process 0, 32 on process 1; every process must run the same command, with the "
            "same config and flags."
        )
    assert not os.path.exists(tmp_path / "experiment.json")  # Refused before writing anything.
