"""Speed (evaluation/speed.py): the decoders table timed side by side, and training tokens/s."""

import dataclasses

import pytest
from conftest import make_tiny_config

from evaluation import decoders, speed
from evaluation.run import load_run
from model.decoder import split_model
from sections import EvalConfig, SpeedConfig
from training import run_folder


def test_time_call_reports_the_median_and_the_first_calls_extra_time():
    calls = []

    def fn():
        calls.append(1)
        return 0

    compile_s, run_s = speed.time_call(fn, repeats=3)
    assert len(calls) == 4 and compile_s >= 0 and run_s >= 0


@pytest.mark.slow
def test_decoders_are_timed_at_every_point_each_on_the_mask_it_needs():
    cfg = make_tiny_config(attention_mask_kind="causal")
    names = ["ar_cache", "ar_no_cache", "ar_cache_naive", "mask_predict_k2", "beam4"]
    specs = decoders.lookup(names)
    rows = speed.time_decoders(
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
    train = speed.training_speed(
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
    rows = speed.time_decoders(
        enc_dec, decoders.lookup(names), [(2, 4, 8)], repeats=1, no_cache_max_length=16,
        log=log.append,
    )  # fmt: skip
    # mask-predict's prefix_full mask becomes the encoder-decoder's full decoder mask.
    assert [r["decoder"] for r in rows] == names
    decoder_only = speed.time_decoders(
        make_tiny_config(), decoders.lookup(names[:2]), [(2, 4, 8)], repeats=1,
        no_cache_max_length=16, log=log.append,
    )  # fmt: skip
    assert [r["decoder"] for r in decoder_only] == ["ar_cache"]
    assert any("not timed on a decoder model" in line for line in log)


def test_the_batch_sweep_times_every_batch_size_at_the_throughput_length():
    swept = SpeedConfig(
        lengths=(16, 32), prompt_len=4, throughput_length=32, batch_size=64, batch_sizes=(8, 1, 64)
    )
    assert speed.speed_points(swept) == [(1, 4, 12), (1, 4, 28), (8, 4, 28), (64, 4, 28)]
    # () keeps batch 1 over the lengths and the one large batch.
    plain = dataclasses.replace(swept, batch_sizes=())
    assert speed.speed_points(plain) == [(1, 4, 12), (1, 4, 28), (64, 4, 28)]


@pytest.mark.parametrize("sizes", [(0,), (8, -1), ("8",), (True,), (2.0,), 8, [1, 2]])
def test_bad_batch_sizes_are_one_line_errors(sizes):
    with pytest.raises(
        ValueError, match=r"^eval.speed.batch_sizes must be a tuple of positive"
    ) as e:
        SpeedConfig(batch_sizes=sizes)
    assert "\n" not in str(e.value)


def test_a_bad_batch_size_from_the_command_line_fails_when_the_config_is_built():
    with pytest.raises(ValueError, match="eval.speed.batch_sizes"):
        EvalConfig().with_overrides({"speed.batch_sizes": [1, 0]})
    assert EvalConfig().with_overrides({"speed.batch_sizes": [1, 64]}).speed.batch_sizes == (1, 64)


@pytest.mark.slow
def test_the_sweep_gives_one_row_per_decoder_and_batch_size():
    cfg = make_tiny_config(attention_mask_kind="causal")
    names = ("ar_cache", "mask_predict_k1")
    swept = SpeedConfig(
        decoders=names, lengths=(12,), prompt_len=4, throughput_length=12, batch_sizes=(1, 2, 4)
    )
    rows = speed.time_decoders(
        cfg, decoders.lookup(swept.decoders), speed.speed_points(swept), repeats=1,
        no_cache_max_length=12, log=lambda _: None,
    )  # fmt: skip
    # batch_size (64 by default) is timed too, after the sweep.
    expected = [(name, b) for b in (1, 2, 4, 64) for name in names]
    assert [(r["decoder"], r["batch_size"]) for r in rows] == expected
    assert all(r["new_tokens"] == 8 and r["variant"] is None for r in rows)


def test_diffusion_decoders_are_timed_again_on_each_further_variants_blocks():
    cfg = make_tiny_config(attention_mask_kind="block_causal", block_size=4)
    lenders = {
        "bd3_block2": make_tiny_config(attention_mask_kind="block_causal", block_size=2),
        "bd3_block4_again": cfg,  # The same blocks as the timed variant: not timed again.
        "mdlm": make_tiny_config(attention_mask_kind="full"),
        "ar": make_tiny_config(attention_mask_kind="causal"),  # One block, as mdlm's.
    }
    specs = decoders.lookup(["ar_cache", "diffusion_t2"])
    lent = speed._lent_models(cfg, specs, 24, lenders, lambda _: None)
    found = [(spec.id, variant, split_model(m.model)[2].block_size) for spec, m, variant in lent]
    # AR (cache) does not read the variant's shape: it is timed once, on the timed variant's.
    assert found == [("diffusion_t2", "bd3_block2", 2), ("diffusion_t2", "mdlm", 24)]
    shape = split_model(lent[0][1].model)[2]
    assert (shape.d_model, shape.max_len, shape.attention_mask_kind) == (32, 24, "block_causal")


@pytest.mark.slow
def test_further_listed_variants_lend_their_trained_shapes(tiny_workdir):
    causal, _ = load_run("causal", 0, run_folder.run_dir(tiny_workdir, "causal", 0))
    listed = SpeedConfig(variants=("causal", "full", "never"), model={"d_ff": 48})
    log = []
    lenders = speed._lenders(causal, listed, log.append)
    assert list(lenders) == ["full"]  # Itself is the timed shape; "never" is not trained.
    assert (lenders["full"].attention_mask_kind, lenders["full"].d_ff) == ("full", 48)
    assert log == ["    speed: never (eval.speed.variants) is not trained; its shape is not timed"]
