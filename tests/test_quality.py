"""Held-out loss and generation quality (evaluation/quality.py), with known answers."""

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_tiny_model

from evaluation import decoders, quality
from evaluation.run import LoadedRun
from model.masks import mask_kind
from objectives import objective_of
from plan import base_config, make_plan


def _run(task, kind, objective="teacher_forcing"):
    config = base_config()
    config.data.update(task="copy", num_symbols=8, min_len=2, max_len=6)
    config.train.objective = objective
    config.model.attention_mask_kind = kind
    config.eval.update(num_examples=8, batch_size=8, random_floor_examples=8, num_samples=2)
    plan = make_plan(config, "")
    return LoadedRun(kind, 0, "/nowhere", make_tiny_model(task, kind), plan, 0)


@pytest.mark.slow
def test_honest_loss_equals_teacher_forced_for_causal_and_not_for_full(copy_task):
    causal = quality.losses(make_tiny_model(copy_task, "causal"), copy_task, 16, 16)
    np.testing.assert_allclose(causal["honest"], causal["teacher_forced"], rtol=1e-6)
    full = quality.losses(make_tiny_model(copy_task, "full"), copy_task, 16, 16)
    assert np.max(np.abs(full["honest"] - full["teacher_forced"])) > 1e-4


@pytest.mark.slow
def test_uniform_model_loss_is_ln_vocab_and_the_random_floor_is_ln_symbols(copy_task):
    model = make_tiny_model(copy_task, "causal")
    model.lm_head.kernel.value = jnp.zeros_like(model.lm_head.kernel.value)
    model.lm_head.bias.value = jnp.zeros_like(model.lm_head.bias.value)
    losses = quality.losses(model, copy_task, 8, 8)
    np.testing.assert_allclose(
        losses["teacher_forced"] / losses["count"], np.log(copy_task.vocab_size), rtol=1e-6
    )
    floor = quality.random_floor(model, copy_task, 8, 8)
    assert floor["floor"] == pytest.approx(np.log(8))
    assert floor["loss"] == pytest.approx(np.log(copy_task.vocab_size), rel=1e-6)


def test_the_loss_evaluator_skips_cmlm_models_and_reports_every_loss(copy_task):
    found = quality.evaluate_loss(
        _run(copy_task, "causal"), _run(copy_task, "causal").config.eval, print
    )
    assert set(found.metrics) == {
        "loss_teacher_forced",
        "loss_honest",
        "leak_gap",
        "random_loss",
        "random_floor",
    }
    assert found.metrics["loss_honest"][0] == pytest.approx(found.metrics["loss_teacher_forced"][0])
    masked = _run(copy_task, "prefix_full", objective="masked")
    assert quality.evaluate_loss(masked, masked.config.eval, lambda _: None).metrics == {}


@pytest.mark.parametrize(
    "kind, objective, expected",
    [
        # Jacobi needs no second model; the speculative decoders' drafts are not configured.
        ("causal", "teacher_forcing", ["ar_cache", "jacobi4"]),
        ("full", "teacher_forcing", ["ar_no_cache", "ar_cache_naive"]),
        ("prefix_full", "masked", [f"mask_predict_k{k}" for k in (1, 2, 4, 8)]),
    ],
)
@pytest.mark.slow
def test_the_quality_evaluator_scores_every_decoder_that_applies(
    copy_task, kind, objective, expected
):
    run = _run(copy_task, kind, objective)
    found = quality.evaluate_generation(run, run.config.eval, lambda _: None)
    assert list(found.samples) == expected
    assert found.signatures == {}  # Not a translation task: no BLEU, no chrF.
    assert not [key for key in found.metrics if key.startswith(("bleu/", "chrf/"))]
    for name in expected:
        exact, _ = found.metrics[f"exact_match/{name}"]
        accuracy, _ = found.metrics[f"token_accuracy/{name}"]
        assert 0 <= exact <= accuracy <= 1 and len(found.samples[name]) == 2


@pytest.mark.slow
def test_beam_search_is_scored_when_eval_decoders_names_it(copy_task):
    run = _run(copy_task, "causal")
    assert "beam4" not in [
        s.id for s in decoders.scored_on(mask_kind("causal"), objective_of("teacher_forcing"))
    ]  # Not in the default set: it costs 4x the decoding.
    run.config = run.config.with_eval({"decoders": ("ar_cache", "beam4")})
    found = quality.evaluate_generation(run, run.config.eval, lambda _: None)
    assert list(found.samples) == ["ar_cache", "beam4"]
    exact, _ = found.metrics["exact_match/beam4"]
    accuracy, _ = found.metrics["token_accuracy/beam4"]
    assert 0 <= exact <= accuracy <= 1


@pytest.mark.slow
def test_prompt_lookup_is_scored_against_greedy_when_eval_decoders_names_it(copy_task):
    run = _run(copy_task, "causal")
    run.config = run.config.with_eval({"decoders": ("ar_cache", "prompt_lookup8")})
    found = quality.evaluate_generation(run, run.config.eval, lambda _: None)
    assert list(found.samples) == ["ar_cache", "prompt_lookup8"]
    assert found.metrics["equals_greedy/prompt_lookup8"][0] == 1.0
    assert 0 < found.metrics["target_passes_per_token/prompt_lookup8"][0] <= 1
