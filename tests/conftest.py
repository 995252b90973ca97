"""Shared fixtures: the tiny model config is the real default config, shrunk.

Implicit rank promotion is an error in every test, so a broadcast that was not meant fails loudly.
The entry points the tests start (train.py, eval.py, ...) share one persistent compilation cache
under .pytest_cache/, so a program compiles once per test run, not once per subprocess.

A test module that leaves the process holding over MAX_MAPPINGS memory mappings ends by dropping
JAX's in-memory caches (`jax.clear_caches`): every compiled XLA CPU program holds mappings, and
the whole suite's programs kept at once pass Linux's limit of 65,530 per process
(vm.max_map_count), after which a thread cannot start or the compiler crashes (seen in CI: "can't
start new thread", and here a segfault in backend_compile_and_load, both near the suite's end).
Clearing only then keeps the fast loop's programs shared between modules.
"""

import contextlib
import dataclasses
import os
import subprocess

import jax
import ml_collections
import pytest

import data
from model import Decoder, ModelConfig, make_decoder

jax.config.update("jax_numpy_rank_promotion", "raise")
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    # One cache per pytest-xdist worker (scripts/gpu_checks.sh runs 4): no two writers share one.
    os.path.join(
        os.path.dirname(os.path.dirname(__file__)),
        ".pytest_cache",
        "jax" + os.environ.get("PYTEST_XDIST_WORKER", ""),
    ),
)


def cpu_devices_env(devices: int = 1, env: dict | None = None) -> dict[str, str]:
    """The environment for a subprocess that runs on `devices` CPU devices, on any machine.

    The multi-device and multi-process tests are about CPU devices (forced host devices, gloo
    collectives); on a GPU machine JAX would otherwise pick its one GPU and find one device.
    """
    return {
        **(os.environ if env is None else env),
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
    }


MAX_MAPPINGS = 20_000  # Of vm.max_map_count's 65,530; one module adds at most a few thousand.


def memory_mappings() -> int | None:
    """This process's memory mappings (Linux's /proc/self/maps lines), or None elsewhere."""
    try:
        with open("/proc/self/maps") as maps:
            return sum(1 for _ in maps)
    except OSError:
        return None


@pytest.fixture(scope="module", autouse=True)
def _compiled_programs_freed_past_max_mappings():
    yield
    if (memory_mappings() or 0) > MAX_MAPPINGS:
        jax.clear_caches()


@pytest.fixture
def exact_fp32_matmuls():
    """fp32 matmuls at full fp32 precision for the test, where a GPU would use TF32 (10-bit
    mantissa) by default: for tests that compare two fp32 computations to 1e-5."""
    with jax.default_matmul_precision("highest"):
        yield


def make_tiny_config(**overrides) -> ModelConfig:
    """ModelConfig() shrunk to test size; keyword overrides win."""
    tiny = dict(vocab_size=23, d_model=32, num_heads=4, num_layers=2, d_ff=64, max_len=48)
    return dataclasses.replace(ModelConfig(), **{**tiny, **overrides})


@pytest.fixture
def tiny_config() -> ModelConfig:
    return make_tiny_config()


@pytest.fixture
def data_config() -> ml_collections.ConfigDict:
    """The default data config, shrunk."""
    config = data.default_data_config()
    config.num_symbols, config.min_len, config.max_len = 7, 1, 6
    return config


@pytest.fixture(scope="module")
def copy_task():
    """A short copy task (8 symbols, sources of 2-6)."""
    config = data.default_data_config()
    config.update(task="copy", num_symbols=8, min_len=2, max_len=6)
    return data.make_task(config)


def make_tiny_model(task, kind: str, seed: int = 0) -> Decoder:
    """A fresh tiny decoder for `task` under mask `kind`."""
    cfg = make_tiny_config(
        vocab_size=task.vocab_size, max_len=task.seq_len, attention_mask_kind=kind
    )
    return make_decoder(cfg, seed)


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory) -> str:
    """experiments/tiny.py trained for 3 steps: causal, full and a CMLM variant (baseline:
    causal; the causal variant's speculative drafts: itself and the CMLM variant), with
    evaluation settings shrunk to seconds; a fourth variant is never trained."""
    from experiments import tiny
    from plan import experiment_json, make_plans
    from training.loop import train_experiment

    config = tiny.get_config()
    config.train.update(
        num_steps=3, log_every=3, eval_every=0, checkpoint_every=3, peak_flops_per_device=1e11
    )
    config.eval.update(
        num_examples=8,
        batch_size=8,
        num_samples=2,
        leakage_examples=4,
        dependency_examples=1,
        random_floor_examples=8,
    )
    config.eval.speed.update(
        decoders=("ar_cache", "ar_no_cache", "mask_predict_k1"),
        lengths=(12,),
        prompt_len=4,
        no_cache_max_length=12,
        batch_size=2,
        throughput_length=12,
        repeats=1,
        train_seq_len=12,
        train_batch_size=2,
        train_steps=1,
    )
    config.variants.cmlm = {
        "model": {"attention_mask_kind": "prefix_full"},
        "train": {"objective": "masked"},
        "eval": {"nar": {"ar_variant": "causal"}},
    }
    # Speculative decoding of the causal variant, drafted by itself and by the CMLM variant.
    config.variants.causal = {
        **config.variants.causal.to_dict(),
        "eval": {"speculative": {"draft_variant": "causal", "cmlm_variant": "cmlm"}},
    }
    config.variants.never = {"model": {"attention_mask_kind": "prefix"}}
    workdir = str(tmp_path_factory.mktemp("tiny"))
    for variant in ("causal", "full", "cmlm"):
        train_experiment(make_plans(config, variant), workdir, experiment_json(config))
    return workdir


@contextlib.contextmanager
def tmpfs(folder, options: str):
    """`folder` with a tmpfs mounted on it (`options`, e.g. "size=600k" or "ro,size=1m") while
    the block runs; the test is skipped where it cannot be mounted (not root)."""
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({options}): not root")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)
