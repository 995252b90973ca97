"""evaluation/report/figures.py and speed_figures.py: every figure the numbers allow is drawn as a
PNG, and the quality-vs-latency points pair each scored decoder with its timed latency, on its
task's quality axis."""

import copy

import pytest
from report_fixtures import FIGURES, make_results, metric, record, sampling_row

from evaluation.report import figures, speed_figures

PNG = b"\x89PNG\r\n\x1a\n"


def test_every_figure_the_numbers_allow_is_a_png():
    drawn = figures.figures(make_results())
    assert set(drawn) == FIGURES
    assert all(png.startswith(PNG) for png in drawn.values())


def test_figures_without_their_numbers_are_not_drawn():
    results = make_results()
    results["speed"] = {}
    for record_ in results["variants"]:
        record_["pictures"] = None
    drawn = figures.figures(results)
    assert "sampling_speed.png" not in drawn and "dependency_maps.png" not in drawn
    assert "speedup_by_batch.png" not in drawn and "losses.png" in drawn


@pytest.mark.slow  # 3-6 s on the 2-core CPU: `make test` stays within 3 minutes.
def test_the_speed_up_by_batch_needs_two_batch_sizes_of_a_decoder():
    results = make_results()
    rule, found = speed_figures.batch_speedups(results)
    assert rule["against"] == "ar_cache"
    assert list(found) == [("mask_predict_k1", None)]
    curve = found["mask_predict_k1", None]
    assert curve["tokens"] == (8, 56)
    assert curve["speedups"] == [(1, 5.0), (8, pytest.approx(3.0)), (16, pytest.approx(0.8))]
    assert speed_figures.speedup_by_batch(rule, found, results).axes[0].get_xscale() == "log"
    results["speed"]["sampling"] = [r for r in results["speed"]["sampling"] if r["batch_size"] < 8]
    assert "speedup_by_batch.png" not in figures.figures(results)


def test_quality_latency_pairs_each_scored_decoder_with_its_latency():
    results = make_results()
    rows = copy.deepcopy(results["speed"]["sampling"])
    points = speed_figures.quality_latency_points(results["variants"], rows, results)
    # Batch 1 at the largest batch's length (8 + 56): AR (cache) 100 ms, K=1 20 ms on copy_nar.
    assert points[("copy", 1, 64)] == [
        ("causal", "AR (cache)", 100.0, 100.0),
        ("full", "AR (no cache, honest)", 200.0, 10.0),
        ("copy_nar", "mask-predict K=1", 20.0, 90.0),
        ("copy_nar", "fake decoder", 200.0, 100.0),
    ]
    assert points[("copy", 16, 64)] == [
        ("causal", "AR (cache)", 200.0, 100.0),
        ("copy_nar", "mask-predict K=1", 250.0, 90.0),
    ]
    assert speed_figures.quality_axes(results["variants"]) == {"copy": QUALITY_AXES["exact_match"]}


QUALITY_AXES = {axis[0]: axis for axis in speed_figures.QUALITY_AXES}


def test_the_frontier_keeps_the_points_that_no_other_is_both_as_fast_and_as_good_as():
    points = [
        ("ar", "AR (cache)", 15.0, 11.5),
        ("ar", "beam 4", 38.0, 13.9),
        ("ar", "speculative", 227.0, 11.5),  # As good as greedy, slower: beaten.
        ("glat", "K=1", 14.6, 0.4),  # The fastest: kept, however poor.
        ("cmlm", "K=1", 14.6, 0.2),  # As fast as glat's K=1, worse: beaten.
        ("cmlm", "K=10", 214.0, 0.4),
    ]
    assert speed_figures.frontier(points, lower_is_better=False) == [0, 1, 3]
    # Lower is better (generative NLL): the fastest, then each point that lowers the NLL.
    nll = [("a", "x", 10.0, 3.0), ("b", "y", 20.0, 2.0), ("c", "z", 30.0, 2.5)]
    assert speed_figures.frontier(nll, lower_is_better=True) == [0, 1]
    # Two identical points do not beat each other.
    assert speed_figures.frontier([nll[0], nll[0]], lower_is_better=True) == [0, 1]


def _text_results() -> dict:
    """Plain text: AR sampling and a diffusion decoder on two block sizes, judged without a
    reference; the diffusion decoder timed on bd3_block4's blocks alone."""
    results = make_results()
    results["decoders"] |= {
        "ar_sample": {"label": "AR (cache, sampled)", "family": "AR"},
        "diffusion_t8": {"label": "diffusion T=8", "family": "diffusion"},
    }
    variants = []
    for name, decoder, gen_nll in (
        ("ar", "ar_sample", 1.5),
        ("bd3_block4", "diffusion_t8", 2.0),
        ("bd3_block16", "diffusion_t8", 2.5),
    ):
        variant = record(name, "causal", 0.0, {decoder: 0.0})
        variant["task"] = "bible"
        variant["metrics"] |= {
            f"gen_nll/{decoder}": metric(gen_nll),
            f"sample_entropy/{decoder}": metric(3.0),
        }
        variants.append(variant)
    results["variants"] = variants
    results["speed"]["sampling"] = [
        dict(sampling_row("ar_cache", 63, 0.5, prompt_len=1), decoder="ar_sample", variant=None),
        dict(sampling_row("mask_predict_k1", 63, 0.1, prompt_len=1), decoder="diffusion_t8",
             family="diffusion", variant="bd3_block4"),
    ]  # fmt: skip
    return results


def test_plain_text_quality_is_generative_nll_at_the_variants_own_blocks():
    results = _text_results()
    assert speed_figures.quality_axes(results["variants"]) == {"bible": QUALITY_AXES["gen_nll"]}
    points = speed_figures.quality_latency_points(
        results["variants"], results["speed"]["sampling"], results
    )
    # bd3_block16's diffusion decoder was not timed on its own blocks: no point.
    assert points == {
        ("bible", 1, 64): [
            ("ar", "AR (cache, sampled)", 500.0, 1.5),
            ("bd3_block4", "diffusion T=8", 100.0, 2.0),
        ]
    }
    png = figures.figures(results)["quality_latency.png"]
    assert png.startswith(PNG)


def test_translation_quality_is_bleu_and_a_multi_modal_task_the_correct_share():
    results = make_results()
    causal, _, nar = results["variants"]
    causal["metrics"]["bleu/ar_cache"] = metric(21.0)
    assert speed_figures.quality_axes([causal]) == {"copy": QUALITY_AXES["bleu"]}
    nar["metrics"]["correct/mask_predict_k1"] = metric(0.55)
    assert speed_figures.quality_axes([nar]) == {"copy": QUALITY_AXES["correct"]}
    points = speed_figures.quality_latency_points([causal], results["speed"]["sampling"], results)
    assert points[("copy", 1, 64)] == [("causal", "AR (cache)", 100.0, 21.0)]


def test_non_ar_variants_side_by_side_get_colours_of_their_own():
    # A GLAT and a CTC student with the same decoder mask: two colours, neither a mask's.
    glat, ctc = ({"non_ar": True, "mask_kind": "full"} for _ in range(2))
    assert figures.color_of(glat, 3) != figures.color_of(ctc, 4)
    every = {figures.color_of(glat, i) for i in range(12)}
    assert not every & set(figures.MASK_COLORS.values())
