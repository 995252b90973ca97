"""Scoring held-out rows (evaluation/scoring.py), with known answers: references, per-row
scores, decoder-blind scoring, and a multi-modal task's outcomes."""

import numpy as np
import pytest
from conftest import make_tiny_model

import data
from data import vocab
from evaluation import decoders, scoring


def test_references_are_the_source_then_eos(copy_task):
    batch = copy_task.batch(0, 8, split="eval")
    prompts = scoring.prompts_of(batch, int(batch["prefix_lengths"].max()), 10)
    for b, reference in enumerate(scoring.references(batch)):
        source = prompts.prompts_BxP[b, 1 : prompts.prompt_lengths_B[b] - 1]  # BOS source SEP.
        np.testing.assert_array_equal(reference, np.append(source, vocab.EOS))
        assert prompts.target_lengths_B[b] == len(reference) - 1  # The oracle length.


def test_score_known_answers():
    ref = np.array([5, 6, 2])
    exact, accuracy = scoring.score(
        [np.array([5, 6, 2]), np.array([5, 7, 2]), np.array([5]), np.array([5, 6, 2, 2])],
        [ref] * 4,
    )
    np.testing.assert_array_equal(exact, [1, 0, 0, 0])
    np.testing.assert_allclose(accuracy, [1, 2 / 3, 1 / 3, 1])


@pytest.mark.slow
def test_the_cache_and_no_cache_score_alike_on_a_causal_model(copy_task):
    # The same greedy continuations, so the same per-row scores: the scoring is decoder-blind.
    model, batches = make_tiny_model(copy_task, "causal"), [copy_task.batch(0, 8, split="eval")]
    scores = [
        scoring.decode_and_score(
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
    batches = list(scoring.eval_batches(copy_task, 20, 8))
    exact, accuracy, outcomes, samples, statistics, texts = scoring.decode_and_score(
        spec, decoders.Models(make_tiny_model(copy_task, "causal")), batches, copy_task, 3
    )
    assert outcomes == {} and statistics == {}  # Copy has one right answer; no statistics.
    assert texts == []  # Not a translation task: no text, no BLEU.
    assert exact.shape == (20,) and exact.mean() == accuracy.mean() == 1.0
    assert len(samples) == 3 and all(line.endswith("✓") for line in samples)


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
    scores = scoring.decode_and_score(
        spec, decoders.Models(model), [task.batch(0, 16, split="eval")], task, 2
    )
    assert scores.outcomes["mixed"].mean() == 1.0  # Every source has >= 2 tokens.
    assert scores.outcomes["correct"].sum() == scores.outcomes["wrong"].sum() == 0
    assert scores.samples[0].endswith("mixed")
