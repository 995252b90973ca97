"""launch.py: errors as one line, and the persistent compilation cache of the entry points."""

import json
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


# Greedy tokens of an untrained decoder on ragged prompts, as a JSON list, under the entry points'
# XLA flags (and whatever XLA_FLAGS sets first); with a CPU number, on that CPU alone, where
# XLA's pool has one thread and runs each dot on it.
GREEDY_TOKENS = """
import json, os, sys
if len(sys.argv) > 1:
    os.sched_setaffinity(0, {int(sys.argv[1])})
import launch
launch.configure_xla_cpu()
import numpy as np
from model import ModelConfig, generate, make_decoder
cfg = ModelConfig(num_layers=2, d_model=128, num_heads=4, d_ff=512, vocab_size=300, max_len=48)
prompts = np.random.default_rng(0).integers(1, 300, (6, 12))
out = generate(make_decoder(cfg), prompts, np.array([12, 3, 7, 1, 12, 9]), max_new_tokens=32)
print(json.dumps(np.asarray(out.tokens_BxL).tolist()))
"""


@pytest.mark.slow
def test_greedy_tokens_are_the_same_on_every_core_count_and_dot_library():
    """Under launch.CPU_XLA_FLAGS XLA splits each dot over every core of its pool; the tokens
    must be those of one core, and of YNNPACK's dots (faster at decoding, slower at training)."""
    paths = {"launch flags": ("", [])}
    paths["YNNPACK's dots"] = ("--xla_cpu_experimental_ynn_fusion_type=individual_dot", [])
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) > 1:
        paths["one core"] = ("", [str(min(os.sched_getaffinity(0)))])
    tokens = {}
    for path, (xla_flags, cpu) in paths.items():
        result = subprocess.run(
            [sys.executable, "-c", GREEDY_TOKENS, *cpu], cwd=REPO, capture_output=True,
            text=True, env={**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": xla_flags},
            timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        tokens[path] = json.loads(result.stdout.splitlines()[-1])
    assert len(tokens["launch flags"]) == 6 and len(tokens["launch flags"][0]) == 12 + 32
    for path, found in tokens.items():
        assert found == tokens["launch flags"], path


def _raised(action) -> BaseException:
    try:
        action()
    except BaseException as error:
        return error
    raise AssertionError("nothing raised")


def _our_check():
    raise ValueError("train.learning_rate=-1 must be > 0")


def test_only_our_checks_and_the_environment_make_one_line_errors():
    assert launch.is_user_error(_raised(_our_check))
    assert launch.is_user_error(_raised(lambda: os.stat("/nonexistent/file")))  # OSError: always.
    # The same types raised by a bug, or by a library on a file nobody checked: a traceback.
    assert not launch.is_user_error(_raised(lambda: {}["metrics"]))
    results = ["a list where a dict was expected"]
    assert not launch.is_user_error(_raised(lambda: results["variants"]))
    assert not launch.is_user_error(_raised(lambda: int("x")))
    assert not launch.is_user_error(_raised(lambda: json.loads("{")))
    assert not launch.is_user_error(_raised(lambda: None.metrics))


@pytest.mark.slow
def test_a_bug_in_main_keeps_its_traceback():
    program = "import launch\ndef main(argv):\n    {}['metrics']\nlaunch.run(main)\n"
    result = subprocess.run(
        [sys.executable, "-c", program, "--nocompilation_cache"], cwd=REPO, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "KeyError: 'metrics'" in result.stderr
