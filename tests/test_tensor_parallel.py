"""Tensor-parallel decoding (model/tensor_parallel.py): the greedy tokens of `generate`.

The split needs two devices, and JAX fixes the CPU device count when it starts, so the two-device
checks run this file as a script in a subprocess with two forced host devices (conftest's
`cpu_devices_env`); the test process keeps its one device.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TESTS))  # For the subprocess, which starts in tests/.

from conftest import cpu_devices_env, make_tiny_config  # noqa: E402

from model import generate, make_decoder  # noqa: E402
from model.tensor_parallel import (  # noqa: E402
    decode_mesh,
    shard_decoder,
    tensor_parallel_generate,
)


def _ragged_prompts(cfg, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths_B = np.array([7, 1, 3, 5, 2, 7])
    return rng.integers(0, cfg.vocab_size, (6, 7)), lengths_B


def _both(mask_kind: str, **kw) -> dict:
    """Tokens and lengths from `generate` and from its two-device split, on ragged prompts."""
    cfg = make_tiny_config(vocab_size=23, attention_mask_kind=mask_kind)  # 23: the head pads.
    model = make_decoder(cfg, seed=1)
    prompts, lengths = _ragged_prompts(cfg)
    single = generate(model, prompts, lengths, max_new_tokens=30, **kw)
    split = tensor_parallel_generate(
        shard_decoder(model, decode_mesh()), prompts, lengths, max_new_tokens=30, **kw
    )
    return {
        name: {"tokens": np.asarray(out.tokens_BxL).tolist(), "lengths": out.lengths_B.tolist()}
        for name, out in (("single", single), ("split", split))
    }


def _compiles_for_new_sampling_parameters() -> int:
    """Traces and compiles of the split after its first call, over new temperatures, top-k,
    top-p, prompts, rng and eos_id (-1: the first call counted none, so the listener is
    broken). Traces count too: with the persistent cache, a recompile may load, not compile."""
    events = {f"/jax/core/compile/{name}_duration" for name in ("jaxpr_trace", "backend_compile")}
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, duration, **kw: compiles.append(event) if event in events else None
    )
    cfg = make_tiny_config()
    sharded = shard_decoder(make_decoder(cfg), decode_mesh())
    tensor_parallel_generate(sharded, *_ragged_prompts(cfg), max_new_tokens=8)
    before = len(compiles)
    for temperature, top_k, top_p in [(1.0, 0, 1.0), (0.7, 5, 1.0), (1.3, 0, 0.9)]:
        tensor_parallel_generate(
            sharded, *_ragged_prompts(cfg, seed=1), max_new_tokens=8, rng=jax.random.key(1),
            temperature=temperature, top_k=top_k, top_p=top_p, eos_id=3,
        )  # fmt: skip
    return len(compiles) - before if before else -1


def _worker(checks: list[str]) -> dict:
    """What the subprocess reports, on two CPU devices."""
    mesh = decode_mesh()
    sharded = shard_decoder(make_decoder(make_tiny_config(num_heads=4, d_ff=64)), mesh)
    qkv = sharded.state["blocks"][0]["attn"]["qkv"]["kernel"].get_value()
    report = {
        "devices": jax.device_count(),
        "qkv_shards": [list(s.data.shape) for s in qkv.addressable_shards],
    }
    for kind in ("causal", "prefix"):
        if kind in checks:
            report[kind] = _both(kind, eos_id=3)
    if "compiles" in checks:
        report["compiles"] = _compiles_for_new_sampling_parameters()
    try:
        shard_decoder(make_decoder(make_tiny_config(num_heads=3, d_model=36)), mesh)
    except ValueError as error:
        report["refusal"] = str(error)
    return report


def _run_worker(*checks: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, *checks],
        capture_output=True, text=True, timeout=300, cwd=TESTS, env=cpu_devices_env(2),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def two_devices() -> dict:
    return _run_worker("causal")


def test_the_split_spreads_each_matrix_over_two_devices(two_devices):
    assert two_devices["devices"] == 2
    # qkv [32, 96] -> two [32, 48] slices: q, k and v of two heads each.
    assert two_devices["qkv_shards"] == [[32, 48], [32, 48]]


def _assert_same_tokens(case: dict) -> None:
    tokens = np.array(case["single"]["tokens"])
    assert (tokens[:, 7:] != 0).sum() > 30  # Rows decode for real before EOS (3) ends them.
    np.testing.assert_array_equal(case["split"]["tokens"], tokens)
    np.testing.assert_array_equal(case["split"]["lengths"], case["single"]["lengths"])


def test_two_devices_give_the_single_device_greedy_tokens(two_devices):
    _assert_same_tokens(two_devices["causal"])


def test_heads_that_do_not_divide_are_refused(two_devices):
    assert "num_heads (3)" in two_devices["refusal"]


@pytest.mark.slow
def test_prefix_lm_tokens_and_no_compiles_for_new_sampling_parameters():
    report = _run_worker("prefix", "compiles")
    _assert_same_tokens(report["prefix"])
    assert report["compiles"] == 0


def test_one_device_keeps_the_single_device_path():
    assert jax.device_count() == 1 and decode_mesh() is None


if __name__ == "__main__":
    print(json.dumps(_worker(sys.argv[1:])))
