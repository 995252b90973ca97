"""Leakage metrics (evaluation/leakage.py) on tiny models, with known answers."""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_tiny_config, make_tiny_model

from data import vocab
from evaluation import leakage
from evaluation.run import LoadedRun
from model import EMPTY, make_attention_mask, make_decoder
from plan import base_config


@pytest.fixture(scope="module")
def batch(copy_task):
    return copy_task.batch(0, 8, split="eval")


def test_perturbation_is_exactly_zero_for_causal_and_prefix_and_positive_for_full(copy_task, batch):
    assert leakage.perturbation_leakage(make_tiny_model(copy_task, "causal"), batch, 3) == 0.0
    assert leakage.perturbation_leakage(make_tiny_model(copy_task, "prefix"), batch, 3) == 0.0
    assert leakage.perturbation_leakage(make_tiny_model(copy_task, "full"), batch, 3) > 1e-4


def test_perturb_after_changes_exactly_the_real_tokens_after_t(batch):
    t_B = np.full(len(batch["inputs"]), 3, np.int32)
    perturbed = leakage.perturb_after(batch["inputs"], t_B, batch["lengths"], 13, seed=0)
    position = np.arange(batch["inputs"].shape[1])[None]
    inside = (position > 3) & (position < batch["lengths"][:, None])
    assert np.all(perturbed[inside] != batch["inputs"][inside])
    np.testing.assert_array_equal(perturbed[~inside], batch["inputs"][~inside])
    assert perturbed[inside].min() >= vocab.FIRST_SYMBOL


def test_causal_dependency_map_is_exactly_lower_triangular(copy_task, batch):
    length = int(batch["lengths"][0])
    map_TxT = leakage.dependency_map(
        make_tiny_model(copy_task, "causal"),
        batch["inputs"][0],
        length,
        int(batch["prefix_lengths"][0]),
    )
    assert map_TxT.shape == (length, length)
    assert np.all(np.triu(map_TxT, k=1) == 0.0)
    assert np.all(np.diag(map_TxT) > 0)
    assert leakage.future_share(map_TxT) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["causal", "full"])
def test_forward_and_reverse_mode_give_the_same_map(copy_task, batch, kind, exact_fp32_matmuls):
    model = make_tiny_model(copy_task, kind)
    args = (batch["inputs"][0], int(batch["lengths"][0]), int(batch["prefix_lengths"][0]))
    forward = leakage.dependency_map(model, *args, forward_mode=True)
    reverse = leakage.dependency_map(model, *args, forward_mode=False)
    np.testing.assert_allclose(forward, reverse, rtol=1e-5, atol=1e-7)
    assert np.all((forward == 0.0) == (reverse == 0.0))  # The same exact zeros.


@pytest.mark.slow
def test_full_map_has_future_mass_and_prefix_only_inside_the_prompt(copy_task, batch):
    length, prefix = int(batch["lengths"][0]), int(batch["prefix_lengths"][0])
    full = leakage.dependency_map(
        make_tiny_model(copy_task, "full"), batch["inputs"][0], length, prefix
    )
    assert leakage.future_share(full) > 0.1
    pre = leakage.dependency_map(
        make_tiny_model(copy_task, "prefix"), batch["inputs"][0], length, prefix
    )
    assert np.all(pre[:prefix, :prefix] > 0)  # The prompt block is full attention.
    assert leakage.future_share(pre, first_row=prefix - 1) == 0.0  # Scored rows see no future.


def test_future_share_known_answer():
    map_TxT = np.array([[1.0, 3.0], [2.0, 4.0]])
    assert leakage.future_share(map_TxT) == pytest.approx(0.3)
    assert leakage.future_share(map_TxT, first_row=1) == 0.0


@pytest.mark.slow
def test_attention_maps_are_distributions_that_reproduce_the_models_attention(copy_task, batch):
    model = make_tiny_model(copy_task, "causal")
    length, prefix = int(batch["lengths"][0]), int(batch["prefix_lengths"][0])
    probs_LxHxTxT = leakage.attention_maps(model, batch["inputs"][0, :length], length, prefix)
    np.testing.assert_allclose(probs_LxHxTxT.sum(-1), 1.0, rtol=1e-5)
    assert np.all(np.triu(probs_LxHxTxT, k=1) == 0.0)
    # Layer 0 by hand: probs @ v through the output projection equals the model's attention.
    block, cfg = model.blocks[0], model.cfg
    tokens_1xT = jnp.asarray(batch["inputs"][:1, :length])
    positions_1xT = jnp.arange(length)[None]
    x_1xTxD = block.ln_attn(model.embed(tokens_1xT, positions_1xT))
    mask = make_attention_mask("causal", positions_1xT, positions_1xT)
    expected, _ = block.attn(x_1xTxD, mask, None, None)
    v_1xTxHxK = block.attn.qkv(x_1xTxD).reshape(1, length, 3, cfg.num_heads, cfg.head_dim)[:, :, 2]
    y_1xTxHxK = jnp.einsum("hts,bshk->bthk", probs_LxHxTxT[0], v_1xTxHxK)
    actual = block.attn.out(y_1xTxHxK.reshape(1, length, cfg.d_model))
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), atol=1e-5)
    assert EMPTY > length  # Padding keys are beyond every position (the mask relies on it).


def test_the_evaluator_returns_both_metrics_and_json_ready_pictures(copy_task):
    config = base_config()
    config.data.update(task="copy", num_symbols=8, min_len=2, max_len=6)
    config.eval.update(leakage_examples=4, dependency_examples=1)
    run = LoadedRun("causal", 0, "/nowhere", make_tiny_model(copy_task, "causal"), config, 0)
    found = leakage.evaluate(run, config.eval, lambda _: None)
    assert found.metrics["perturbation_leakage"] == (0.0, None)
    assert found.metrics["dependency_future_share"] == (0.0, None)
    pictures = json.loads(json.dumps(found.pictures))  # JSON as it is: results.json holds it.
    T = len(pictures["labels"])
    assert np.asarray(pictures["dependency_map"]).shape == (T, T)
    assert np.asarray(pictures["attention"]).shape == (2, T, T)  # Layers, mean over heads.
    assert pictures["labels"][0] == "^" and pictures["prefix_length"] > 1


def test_block_causal_leaks_inside_a_block_and_exactly_zero_across_blocks(copy_task, batch):
    cfg = make_tiny_config(
        vocab_size=copy_task.vocab_size,
        max_len=copy_task.seq_len,
        attention_mask_kind="block_causal",
        block_size=3,
    )
    model = make_decoder(cfg, 0)
    assert leakage.perturbation_leakage(model, batch, 3) > 1e-4
    assert leakage.perturbation_leakage(model, batch, 3, across_blocks=True) == 0.0


def test_block_end_is_the_last_position_of_the_block():
    t_B = np.array([0, 2, 3, 4, 6, 7])
    prefix_B = np.full(6, 3)
    # The prompt [0, 3) is one block; then blocks [3, 5), [5, 7), [7, 9).
    np.testing.assert_array_equal(leakage.block_end(t_B, prefix_B, 2), [2, 2, 4, 4, 6, 8])
