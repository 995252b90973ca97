"""One training process per workdir (training/run_lock.py): refused while held, taken over when
its holder is dead, released on exit."""

import json
import os
import subprocess
import sys

import pytest

from training import run_folder, run_lock


def test_a_second_holder_is_refused_and_named(tmp_path):
    with run_lock.hold(str(tmp_path)):
        holder = json.loads((tmp_path / ".lock").read_text())
        assert holder["pid"] == os.getpid()
        refused = pytest.raises(run_lock.WorkdirInUseError, match=f"in use by pid {os.getpid()} on")
        with refused, run_lock.hold(str(tmp_path)):
            pass
    assert not os.path.exists(run_folder.lock_path(str(tmp_path)))  # Released.


def test_the_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    (tmp_path / ".lock").write_text(json.dumps({"pid": int(dead.stdout), "host": None}))
    with run_lock.hold(str(tmp_path)):
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    assert "taking over the lock" in capsys.readouterr().err


def test_a_half_written_lock_is_stale(tmp_path, capsys):
    (tmp_path / ".lock").write_text("{")  # Its writer died between creating and writing it.
    with run_lock.hold(str(tmp_path)):  # Taken over: it now names this process.
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / ".lock").exists()  # And released.
    note = capsys.readouterr().err
    assert "died while writing it" in note and "None" not in note, note


def test_a_lock_held_on_another_host_is_never_taken(tmp_path):
    (tmp_path / ".lock").write_text(json.dumps({"pid": 1, "host": "elsewhere.example"}))
    refused = pytest.raises(run_lock.WorkdirInUseError, match="elsewhere.example")
    with refused, run_lock.hold(str(tmp_path)):
        pass
