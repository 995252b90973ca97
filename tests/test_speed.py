"""The speed evaluators (evaluation/speed.py): the points timed, the batch sweep and the shapes
that further variants lend."""

import dataclasses

import pytest
from conftest import make_tiny_config

from evaluation import decoders, speed, timing
from evaluation.run import load_run
from sections import EvalConfig, SpeedConfig
from training import run_folder


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
    rows = timing.time_decoders(
        cfg, decoders.lookup(swept.decoders), speed.speed_points(swept), repeats=1,
        no_cache_max_length=12, log=lambda _: None,
    )  # fmt: skip
    # batch_size (64 by default) is timed too, after the sweep.
    expected = [(name, b) for b in (1, 2, 4, 64) for name in names]
    assert [(r["decoder"], r["batch_size"]) for r in rows] == expected
    assert all(r["new_tokens"] == 8 and r["variant"] is None for r in rows)


@pytest.mark.slow
def test_further_listed_variants_lend_their_trained_shapes(tiny_workdir):
    causal, _ = load_run("causal", 0, run_folder.run_dir(tiny_workdir, "causal", 0))
    listed = SpeedConfig(variants=("causal", "full", "never"), model={"d_ff": 48})
    log = []
    lenders = speed._lenders(causal, listed, log.append)
    assert list(lenders) == ["full"]  # Itself is the timed shape; "never" is not trained.
    assert (lenders["full"].attention_mask_kind, lenders["full"].d_ff) == ("full", 48)
    assert log == ["    speed: never (eval.speed.variants) is not trained; its shape is not timed"]
