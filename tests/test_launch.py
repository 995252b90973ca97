"""launch.py: errors as one line, and the persistent compilation cache of the entry points."""

import os
import subprocess
import sys

import pytest

import launch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_BENCHMARK = [
    "-m", "benchmarks.nar", "--batch_sizes=1", "--target_lens=8", "--iterations=1",
    "--repeats=1", "--num_layers=1", "--d_model=16", "--num_heads=2", "--d_ff=32",
]  # fmt: skip


def test_message_of_gives_one_readable_line():
    assert launch.message_of(ValueError("x must be > 0")) == "x must be > 0"
    assert launch.message_of(KeyError("num_stepz")) == "num_stepz"  # No quotes.
    nested = AttributeError(KeyError("'num_stepz'\nDid you mean \"num_steps\"?"))
    assert launch.message_of(nested) == "'num_stepz'; Did you mean \"num_steps\"?"
    listed = ValueError("Differences (saved -> now):\n  a: 1 -> 2\n  b: 3 -> 4")
    assert launch.message_of(listed) == "Differences (saved -> now): a: 1 -> 2; b: 3 -> 4"
    assert launch.message_of(OSError()) == "OSError"


def _cache_files(home) -> list[str]:
    folder = os.path.join(home, ".cache", "ar-vs-nar", "jax")
    return os.listdir(folder) if os.path.isdir(folder) else []


@pytest.mark.slow
def test_entry_points_keep_compiled_programs_on_disk_unless_told_not_to(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    for home, flag in ((tmp_path / "on", []), (tmp_path / "off", ["--nocompilation_cache"])):
        result = subprocess.run(
            [sys.executable, *TINY_BENCHMARK, *flag], cwd=REPO, env={**env, "HOME": str(home)},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
    assert len(_cache_files(tmp_path / "on")) >= 2  # generate and mask_predict, at least.
    assert _cache_files(tmp_path / "off") == []
