"""evaluation/report/speed_rules.py: the timed tables' verdict rules give the expected sentences
on a tiny results dict, and nothing where the rows they compare are missing."""

import pytest

from evaluation.report.speed_rules import SPEED_RULES, speedups_by_batch, timed_label

RESULTS = {
    "decoders": {
        "ar_cache": {"label": "AR (cache)", "family": "AR"},
        "ar_no_cache": {"label": "AR (no cache)", "family": "AR"},
        "mask_predict_k2": {"label": "Mask-Predict K=2", "family": "non-AR"},
        "diffusion_t2": {"label": "Diffusion T=2", "family": "diffusion"},
    }
}
PARALLEL = {"against": "ar_cache", "families": ["non-AR", "diffusion"]}


def _row(decoder, batch_size, new_tokens, latency_s, variant=None, prompt_len=4):
    return {
        "decoder": decoder,
        "variant": variant,
        "batch_size": batch_size,
        "prompt_len": prompt_len,
        "new_tokens": new_tokens,
        "length": prompt_len + new_tokens,
        "latency_s": latency_s,
    }


def _rule(name, rows, **parameters):
    scope, fn = SPEED_RULES[name]
    assert scope == "table"
    return fn(RESULTS, rows, parameters)


def test_the_cache_speedup_by_length_at_batch_1():
    rows = [
        _row("ar_cache", 1, 12, 0.010),
        _row("ar_no_cache", 1, 12, 0.020),
        _row("ar_cache", 1, 28, 0.020),
        _row("ar_no_cache", 1, 28, 0.080),
        _row("ar_no_cache", 8, 28, 0.5),  # Not batch 1: not compared.
    ]
    assert _rule("cache_speedup", rows, cache="ar_cache", no_cache="ar_no_cache") == [
        "KV cache vs no cache (batch 1): 2.0× faster at 16 tokens, 4.0× faster at 32 tokens; "
        "the speed-up grows with length."
    ]
    assert _rule("cache_speedup", rows[:1], cache="ar_cache", no_cache="ar_no_cache") == []


def test_the_training_speedup_of_teacher_forcing_over_sequential():
    rows = [
        {"objective": "teacher_forcing", "seq_len": 64, "tokens_per_s": 10000.0},
        {"objective": "sequential", "seq_len": 64, "tokens_per_s": 2500.0},
    ]
    assert _rule("training_speedup", rows, fast="teacher_forcing", slow="sequential") == [
        "Training at length 64: teacher forcing 10,000 tokens/s vs sequential 2,500 (4.0×): "
        "one parallel pass instead of one pass per position."
    ]
    assert _rule("training_speedup", rows[:1], fast="teacher_forcing", slow="sequential") == []


def test_each_parallel_decoder_against_ar_at_each_point():
    rows = [
        _row("ar_cache", 1, 12, 0.010),
        _row("mask_predict_k2", 1, 12, 0.004),
        _row("diffusion_t2", 1, 12, 0.005, variant="bd3"),
        _row("ar_cache", 64, 28, 0.020),
        _row("mask_predict_k2", 64, 28, 0.050),
        _row("mask_predict_k2", 8, 28, 0.010),  # No AR row at this point: no sentence.
    ]
    assert _rule("parallel_speed", rows, **PARALLEL) == [
        "At batch 1, 4 prompt + 12 new tokens, AR (cache) takes 10.0 ms; Mask-Predict K=2 takes "
        "4.0 ms (2.5x faster); Diffusion T=2 on bd3 takes 5.0 ms (2.0x faster).",
        "At batch 64, 4 prompt + 28 new tokens, AR (cache) takes 20.0 ms; Mask-Predict K=2 takes "
        "50.0 ms (AR 2.5x faster).",
    ]


def test_the_batch_speedup_names_where_it_falls_below_1():
    rows = [
        _row("ar_cache", 1, 28, 0.010),
        _row("ar_cache", 8, 28, 0.012),
        _row("ar_cache", 64, 28, 0.020),
        _row("mask_predict_k2", 1, 28, 0.005),
        _row("mask_predict_k2", 8, 28, 0.010),
        _row("mask_predict_k2", 64, 28, 0.050),
        _row("diffusion_t2", 1, 28, 0.020),  # Slower at every batch size timed.
        _row("diffusion_t2", 64, 28, 0.040),
    ]
    found = speedups_by_batch(RESULTS, rows, PARALLEL)
    assert found[("mask_predict_k2", None)]["tokens"] == (4, 28)
    assert found[("mask_predict_k2", None)]["speedups"] == [
        (1, pytest.approx(2.0)),
        (8, pytest.approx(1.2)),
        (64, pytest.approx(0.4)),
    ]
    assert _rule("batch_speedup", rows, **PARALLEL) == [
        "Mask-Predict K=2 against AR (cache) by batch size (4 prompt + 28 new tokens): 2.00× at "
        "batch 1, 1.20× at batch 8, 0.40× at batch 64; its speed-up falls below 1 at batch 64.",
        "Diffusion T=2 against AR (cache) by batch size (4 prompt + 28 new tokens): 0.50× at "
        "batch 1, 0.50× at batch 64; it is slower than AR (cache) at every batch size timed.",
    ]
    one_batch = [r for r in rows if r["batch_size"] == 1]
    assert _rule("batch_speedup", one_batch, **PARALLEL) == []


def test_a_timed_label_falls_back_to_the_id_and_names_the_lending_variant():
    assert timed_label(RESULTS, "mask_predict_k2") == "Mask-Predict K=2"
    assert timed_label(RESULTS, "beam4", "bd3") == "beam4 on bd3"
    assert timed_label({}, "ar_cache") == "ar_cache"
