"""Timing on random weights (evaluation/timing.py): the decoders table timed side by side, each on
the mask it needs and on the shapes further variants lend, and training tokens/s."""

import pytest
from conftest import make_tiny_config

from evaluation import decoders, timing
from model.decoder import split_model


def test_time_call_reports_the_median_and_the_first_calls_extra_time():
    calls = []

    def fn():
        calls.append(1)
        return 0

    compile_s, run_s = timing.time_call(fn, repeats=3)
    assert len(calls) == 4 and compile_s >= 0 and run_s >= 0


@pytest.mark.slow
def test_decoders_are_timed_at_every_point_each_on_the_mask_it_needs():
    cfg = make_tiny_config(attention_mask_kind="causal")
    names = ["ar_cache", "ar_no_cache", "ar_cache_naive", "mask_predict_k2", "beam4"]
    specs = decoders.lookup(names)
    rows = timing.time_decoders(
        cfg, specs, [(1, 4, 12), (3, 4, 28)], repeats=1, no_cache_max_length=16, log=lambda _: None
    )
    # The naive decoder runs AR (cache)'s program, so it is not timed again; the no-cache
    # decoder stops at no_cache_max_length total tokens.
    assert [(r["decoder"], r["batch_size"], r["length"]) for r in rows] == [
        ("ar_cache", 1, 16),
        ("ar_no_cache", 1, 16),
        ("mask_predict_k2", 1, 16),
        ("beam4", 1, 16),  # Timing has no EOS: every beam runs to the last token.
        ("ar_cache", 3, 32),
        ("mask_predict_k2", 3, 32),
        ("beam4", 3, 32),
    ]
    for row in rows:
        assert row["family"] == decoders.DECODERS[row["decoder"]].family
        assert row["tokens_per_s"] == pytest.approx(
            row["batch_size"] * row["new_tokens"] / row["latency_s"]
        )


@pytest.mark.slow
def test_training_speed_rows():
    cfg = make_tiny_config()
    train = timing.training_speed(
        cfg,
        objectives=("teacher_forcing", "sequential"),
        seq_len=16,
        batch_size=4,
        steps=1,
        log=lambda _: None,
    )
    assert [r["objective"] for r in train] == ["teacher_forcing", "sequential"]
    assert all(r["tokens_per_s"] > 0 and r["compile_s"] >= 0 for r in train)


@pytest.mark.slow
def test_an_encoder_decoder_is_timed_with_and_without_its_cross_attention_cache():
    names = ["ar_cache", "ar_cache_no_cross_kv", "mask_predict_k2"]
    log = []
    enc_dec = make_tiny_config(architecture="encoder_decoder")
    rows = timing.time_decoders(
        enc_dec, decoders.lookup(names), [(2, 4, 8)], repeats=1, no_cache_max_length=16,
        log=log.append,
    )  # fmt: skip
    # mask-predict's prefix_full mask becomes the encoder-decoder's full decoder mask.
    assert [r["decoder"] for r in rows] == names
    decoder_only = timing.time_decoders(
        make_tiny_config(), decoders.lookup(names[:2]), [(2, 4, 8)], repeats=1,
        no_cache_max_length=16, log=log.append,
    )  # fmt: skip
    assert [r["decoder"] for r in decoder_only] == ["ar_cache"]
    assert any("not timed on a decoder model" in line for line in log)


def test_diffusion_decoders_are_timed_again_on_each_further_variants_blocks():
    cfg = make_tiny_config(attention_mask_kind="block_causal", block_size=4)
    lenders = {
        "bd3_block2": make_tiny_config(attention_mask_kind="block_causal", block_size=2),
        "bd3_block4_again": cfg,  # The same blocks as the timed variant: not timed again.
        "mdlm": make_tiny_config(attention_mask_kind="full"),
        "ar": make_tiny_config(attention_mask_kind="causal"),  # One block, as mdlm's.
    }
    specs = decoders.lookup(["ar_cache", "diffusion_t2"])
    lent = timing._lent_models(cfg, specs, 24, lenders, lambda _: None)
    found = [(spec.id, variant, split_model(m.model)[2].block_size) for spec, m, variant in lent]
    # AR (cache) does not read the variant's shape: it is timed once, on the timed variant's.
    assert found == [("diffusion_t2", "bd3_block2", 2), ("diffusion_t2", "mdlm", 24)]
    shape = split_model(lent[0][1].model)[2]
    assert (shape.d_model, shape.max_len, shape.attention_mask_kind) == (32, 24, "block_causal")
