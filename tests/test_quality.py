"""Held-out loss and generation quality (evaluation/quality.py), with known answers."""

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import make_tiny_model

import data
from data import vocab
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


def test_references_are_the_source_then_eos(copy_task):
    batch = copy_task.batch(0, 8, split="eval")
    prompts = quality.prompts_of(batch, int(batch["prefix_lengths"].max()), 10)
    for b, reference in enumerate(quality.references(batch)):
        source = prompts.prompts_BxP[b, 1 : prompts.prompt_lengths_B[b] - 1]  # BOS source SEP.
        np.testing.assert_array_equal(reference, np.append(source, vocab.EOS))
        assert prompts.target_lengths_B[b] == len(reference) - 1  # The oracle length.


def test_score_known_answers():
    ref = np.array([5, 6, 2])
    exact, accuracy = quality.score(
        [np.array([5, 6, 2]), np.array([5, 7, 2]), np.array([5]), np.array([5, 6, 2, 2])],
        [ref] * 4,
    )
    np.testing.assert_array_equal(exact, [1, 0, 0, 0])
    np.testing.assert_allclose(accuracy, [1, 2 / 3, 1 / 3, 1])


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
def test_the_cache_and_no_cache_score_alike_on_a_causalmake_tiny_model(copy_task):
    # The same greedy continuations, so the same per-row scores: the scoring is decoder-blind.
    model, batches = make_tiny_model(copy_task, "causal"), [copy_task.batch(0, 8, split="eval")]
    scores = [
        quality.decode_and_score(
            decoders.DECODERS[name], decoders.Models(model), batches, copy_task, 0
        )
        for name in ("ar_cache", "ar_no_cache")
    ]
    np.testing.assert_array_equal(scores[0][0], scores[1][0])
    np.testing.assert_array_equal(scores[0][1], scores[1][1])


def test_a_perfect_decoder_scores_100_percent(copy_task):
    def copier(models, prompts):  # Writes each prompt's source, then EOS: the copy answer.
        B, P = prompts.prompts_BxP.shape
        tokens = np.zeros((B, P + prompts.max_new_tokens), np.int32)
        lengths = np.zeros(B, np.int32)
        for b, p in enumerate(prompts.prompt_lengths_B):
            row = np.concatenate([prompts.prompts_BxP[b, :p], prompts.prompts_BxP[b, 1 : p - 1]])
            row = np.append(row, vocab.EOS)
            tokens[b, : len(row)], lengths[b] = row, len(row)
        return decoders.GenerateOutput(tokens, lengths)

    spec = decoders.DecoderSpec("copier", "copier", "AR", "test", copier, lambda m, o: True, None)
    batches = list(quality.eval_batches(copy_task, 20, 8))
    exact, accuracy, outcomes, samples, statistics, texts = quality.decode_and_score(
        spec, decoders.Models(make_tiny_model(copy_task, "causal")), batches, copy_task, 3
    )
    assert outcomes == {} and statistics == {}  # Copy has one right answer; no statistics.
    assert texts == []  # Not a translation task: no text, no BLEU.
    assert exact.shape == (20,) and exact.mean() == accuracy.mean() == 1.0
    assert len(samples) == 3 and all(line.endswith("✓") for line in samples)


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


def test_a_multi_modal_task_is_scored_correct_mixed_or_wrong(data_config):
    data_config.update(task="two_alphabets", num_symbols=4, min_len=3, max_len=5)
    task = data.make_task(data_config)
    n = data_config.num_symbols

    def alternate(models, prompts):  # Even positions in alphabet A, odd ones in B: "mixed".
        B, P = prompts.prompts_BxP.shape
        tokens = np.zeros((B, P + prompts.max_new_tokens), np.int32)
        lengths = np.zeros(B, np.int32)
        for b, p in enumerate(prompts.prompt_lengths_B):
            source = prompts.prompts_BxP[b, 1 : p - 1]
            body = source + n * (np.arange(len(source)) % 2)
            row = np.concatenate([prompts.prompts_BxP[b, :p], body, [vocab.EOS]])
            tokens[b, : len(row)], lengths[b] = row, len(row)
        return decoders.GenerateOutput(tokens, lengths)

    spec = decoders.DecoderSpec(
        "alternate", "alternate", "non-AR", "test", alternate, lambda m, o: True, None
    )
    model = make_tiny_model(task, "causal")
    scores = quality.decode_and_score(
        spec, decoders.Models(model), [task.batch(0, 16, split="eval")], task, 2
    )
    assert scores.outcomes["mixed"].mean() == 1.0  # Every source has >= 2 tokens.
    assert scores.outcomes["correct"].sum() == scores.outcomes["wrong"].sum() == 0
    assert scores.samples[0].endswith("mixed")
