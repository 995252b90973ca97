"""evaluation/report/figures.py: every figure the numbers allow is drawn as a PNG, and the
quality-vs-latency points pair each scored decoder with its timed latency."""

import copy

from report_fixtures import FIGURES, make_results

from evaluation.report import figures


def test_every_figure_the_numbers_allow_is_a_png():
    drawn = figures.figures(make_results())
    assert set(drawn) == FIGURES
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in drawn.values())


def test_figures_without_their_numbers_are_not_drawn():
    results = make_results()
    results["speed"] = {}
    for record in results["variants"]:
        record["pictures"] = None
    drawn = figures.figures(results)
    assert "sampling_speed.png" not in drawn and "dependency_maps.png" not in drawn
    assert "losses.png" in drawn


def test_quality_latency_pairs_each_scored_decoder_with_its_latency():
    results = make_results()
    rows = copy.deepcopy(results["speed"]["sampling"])
    points = figures.quality_latency_points(results["variants"], rows, results)
    # Batch 1 at the shortest length (8 + 56): AR (cache) 100 ms on causal, K=1 20 ms on copy_nar.
    assert points[("copy", "batch 1")] == [
        ("causal", "AR (cache)", 100.0, 100.0),
        ("full", "AR (no cache, honest)", 200.0, 10.0),
        ("copy_nar", "mask-predict K=1", 20.0, 90.0),
        ("copy_nar", "fake decoder", 200.0, 100.0),
    ]
