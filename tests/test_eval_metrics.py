"""Evaluation metrics on tiny models, with known answers: leakage, losses, generation, speed."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_tiny_config

import data
from data import vocab
from evaluation import leakage, quality, runner, speed
from model import make_attention_mask, make_decoder
from model.attention import EMPTY


@pytest.fixture(scope="module")
def copy_task():
    config = data.default_data_config()
    config.update(task="copy", num_symbols=8, min_len=2, max_len=6)
    return data.make_task(config)


def _model(task, kind, seed=0):
    cfg = make_tiny_config(
        vocab_size=task.vocab_size, max_len=task.seq_len, attention_mask_kind=kind
    )
    return make_decoder(cfg, seed)


@pytest.fixture(scope="module")
def batch(copy_task):
    return copy_task.batch(0, 8, split="eval")


def test_perturbation_is_exactly_zero_for_causal_and_prefix_and_positive_for_full(copy_task, batch):
    assert leakage.perturbation_leakage(_model(copy_task, "causal"), batch, 3) == 0.0
    assert leakage.perturbation_leakage(_model(copy_task, "prefix"), batch, 3) == 0.0
    assert leakage.perturbation_leakage(_model(copy_task, "full"), batch, 3) > 1e-4


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
        _model(copy_task, "causal"), batch["inputs"][0], length, int(batch["prefix_lengths"][0])
    )
    assert map_TxT.shape == (length, length)
    assert np.all(np.triu(map_TxT, k=1) == 0.0)
    assert np.all(np.diag(map_TxT) > 0)
    assert leakage.future_share(map_TxT) == 0.0


def test_full_map_has_future_mass_and_prefix_only_inside_the_prompt(copy_task, batch):
    length, prefix = int(batch["lengths"][0]), int(batch["prefix_lengths"][0])
    full = leakage.dependency_map(_model(copy_task, "full"), batch["inputs"][0], length, prefix)
    assert leakage.future_share(full) > 0.1
    pre = leakage.dependency_map(_model(copy_task, "prefix"), batch["inputs"][0], length, prefix)
    assert np.all(pre[:prefix, :prefix] > 0)  # The prompt block is full attention.
    assert leakage.future_share(pre, first_row=prefix - 1) == 0.0  # Scored rows see no future.


def test_future_share_known_answer():
    map_TxT = np.array([[1.0, 3.0], [2.0, 4.0]])
    assert leakage.future_share(map_TxT) == pytest.approx(0.3)
    assert leakage.future_share(map_TxT, first_row=1) == 0.0


def test_attention_maps_are_distributions_that_reproduce_the_models_attention(copy_task, batch):
    model = _model(copy_task, "causal")
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


def test_honest_loss_equals_teacher_forced_for_causal_and_not_for_full(copy_task):
    causal = quality.losses(_model(copy_task, "causal"), copy_task, 16, 16)
    np.testing.assert_allclose(causal["honest"], causal["teacher_forced"], rtol=1e-6)
    full = quality.losses(_model(copy_task, "full"), copy_task, 16, 16)
    assert np.max(np.abs(full["honest"] - full["teacher_forced"])) > 1e-4


def test_uniform_model_loss_is_ln_vocab_and_the_random_floor_is_ln_symbols(copy_task):
    model = _model(copy_task, "causal")
    model.lm_head.kernel.value = jnp.zeros_like(model.lm_head.kernel.value)
    model.lm_head.bias.value = jnp.zeros_like(model.lm_head.bias.value)
    losses = quality.losses(model, copy_task, 8, 8)
    np.testing.assert_allclose(losses["teacher_forced"], np.log(copy_task.vocab_size), rtol=1e-6)
    config = data.default_data_config()
    config.update(task="copy", num_symbols=8, min_len=2, max_len=6)
    floor = quality.random_floor(model, config, 8, 8)
    assert floor["floor"] == pytest.approx(np.log(8))
    assert floor["loss"] == pytest.approx(np.log(copy_task.vocab_size), rel=1e-6)


def test_split_prompts_reference_is_the_source_then_eos(batch):
    prompts_BxP, prefix_B, references = quality.split_prompts(batch)
    for b, reference in enumerate(references):
        source = prompts_BxP[b, 1 : prefix_B[b] - 1]  # BOS source SEP.
        np.testing.assert_array_equal(reference, np.append(source, vocab.EOS))


def test_score_known_answers():
    ref = np.array([5, 6, 2])
    exact, accuracy = quality.score(
        [np.array([5, 6, 2]), np.array([5, 7, 2]), np.array([5]), np.array([5, 6, 2, 2])],
        [ref] * 4,
    )
    np.testing.assert_array_equal(exact, [1, 0, 0, 0])
    np.testing.assert_allclose(accuracy, [1, 2 / 3, 1 / 3, 1])


def test_greedy_generation_scores_every_row_with_each_decoder(copy_task):
    results = quality.generation_quality(_model(copy_task, "causal"), copy_task, 8, 8, 2)
    assert set(results) == set(quality.DECODERS["causal"])
    for result in results.values():
        assert result["exact_match"].shape == (8,) and len(result["samples"]) == 2
        assert np.all((0 <= result["token_accuracy"]) & (result["token_accuracy"] <= 1))


def test_render_tokens():
    ids = [vocab.BOS, 5, 6, vocab.SEP, 5, vocab.EOS, vocab.PAD]
    assert quality.render_tokens(ids, 8) == "^ab|a$·"
    assert quality.render_tokens([vocab.BOS, 5 + ord("h"), 5 + ord("i")], 256) == "^hi"


def test_mean_sem_and_aggregate_known_answers():
    assert quality.mean_sem([1.0, 3.0]) == (2.0, 1.0)
    assert quality.mean_sem([4.0]) == (4.0, 0.0)
    out = runner.aggregate([{"m": (1.0, 0.1)}, {"m": (3.0, 0.2)}])["m"]
    assert out == {
        "mean": 2.0,
        "sem": 1.0,
        "n_seeds": 2,
        "per_seed": [1.0, 3.0],
        "per_seed_sem": [0.1, 0.2],
    }
    assert runner.aggregate([{"m": (1.0, None)}])["m"]["sem"] is None


@pytest.mark.slow
def test_sampling_and_training_speed_rows(copy_task):
    cfg = make_tiny_config(vocab_size=copy_task.vocab_size, max_len=32)
    rows = speed.sampling_speed(
        cfg,
        (16, 32),
        no_cache_max_length=16,
        prompt_len=4,
        batch_size=4,
        throughput_length=16,
        repeats=1,
        log=lambda _: None,
    )
    assert [(r["decoder"], r["batch_size"], r["length"]) for r in rows] == [
        ("cache", 1, 16),
        ("no cache", 1, 16),
        ("cache", 1, 32),
        ("cache", 4, 16),
        ("no cache", 4, 16),
    ]
    assert all(r["tokens_per_s"] > 0 and r["compile_s"] >= 0 for r in rows)
    train = speed.training_speed(
        cfg,
        objectives=("teacher_forcing", "sequential"),
        seq_len=16,
        batch_size=4,
        steps=1,
        log=lambda _: None,
    )
    assert [r["objective"] for r in train] == ["teacher_forcing", "sequential"]
    assert jax.tree.all(jax.tree.map(lambda r: r > 0, [r["tokens_per_s"] for r in train]))
