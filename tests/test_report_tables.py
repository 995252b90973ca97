"""The report's tables (evaluation/report/tables.py, numbers.py): columns from the metric
descriptions, number formats, and a table of an evaluator's own."""

import pytest
from report_fixtures import FAKE, make_results, metric
from test_report_verdicts import SIGNATURES, with_translation

from evaluation.report import tables
from evaluation.report.numbers import fmt, sem_of


@pytest.fixture
def results():
    return make_results()


def test_fmt_marks_one_seed_and_formats_shares_and_scores():
    assert fmt(metric(0.0)) == "0.0"
    assert fmt(metric(1.23456, sem=0.01, per_seed=[1.2, 1.3])) == "1.23 ± 0.01"
    assert fmt(metric(0.5, example_sem=0.02)) == "0.5 ± 0.02†"
    assert fmt(metric(0.991, example_sem=0.004), "percent") == "99.1% ± 0.4%†"
    assert fmt(metric(44.0, sem=0.812, per_seed=[43, 45]), "points") == "44.0 ± 0.8"
    assert fmt(None) == "—"


def test_a_metric_over_seeds_carries_the_examples_sem_too():
    """Every seed is scored on the same examples, so the seeds' spread misses the examples'
    sampling error: the sem shown combines both (3-4-5), and stays the seeds' alone where a
    seed has none over examples."""
    three = metric(17.3, sem=0.3, example_sem=0.4, per_seed=[17.0, 17.7, 17.2])
    assert sem_of(three) == pytest.approx(0.5)
    assert fmt(three, "points") == "17.3 ± 0.5"
    three["per_seed_sem"][1] = None
    assert sem_of(three) == 0.3
    assert sem_of(metric(4.0, example_sem=0.2)) == 0.2 and sem_of(metric(4.0)) is None


def test_the_summary_has_the_described_columns_of_the_metrics_present(results):
    headers, rows = tables.summary_table(results)
    assert headers[7:] == [
        "max |Δ logits| (past)",
        "future share",
        "loss, teacher-forced",
        "loss, honest",
        "random-token loss (floor)",
        "train tokens/s (logged)",
        "training (min)",
        "training (TFLOP)",
    ]  # leak_gap and random_floor are hidden; length accuracy is absent from every variant.
    full = dict(zip(headers, rows[1], strict=True))
    assert full["random-token loss (floor)"] == "0.2 ± 0.01† (2.77)"
    assert full["future share"] == "30.0%" and full["step"] == "40/40"
    assert (full["training (min)"], full["training (TFLOP)"]) == ("1.5", "3,000.0")
    del results["variants"][1]["train_cost"]  # results.json written before the column.
    assert tables.summary_table(results)[1][1][-2:] == ["—", "—"]
    results["variants"][1]["mask_label"] = "enc-dec, full"
    assert tables.summary_table(results)[1][1][2] == "enc-dec, full"


def test_quality_columns_follow_the_metrics_present(results):
    base = ["variant", "decoder", "family", "exact match", "token accuracy"]
    assert tables.quality_table(results)[0] == base
    headers, rows = tables.quality_table(with_translation(results))
    assert headers == [*base, "BLEU", "chrF"]
    cells = {tuple(row[:2]): row[5:] for row in rows}
    assert cells["causal_de_en", "AR (cache)"] == ["21.3 ± 1.2†", "45.6 ± 0.8†"]
    assert cells["cmlm_de_en", "mask-predict K=4"] == ["18.3 ± 1.2†", "44.0 ± 0.8†"]
    assert cells["causal", "AR (cache)"] == ["—", "—"]
    note = tables.signature_note(results["variants"], results)
    assert f"BLEU `{SIGNATURES['bleu']}`" in note and f"chrF `{SIGNATURES['chrf']}`" in note


def test_outcomes_and_a_decoders_own_statistics_become_columns(results):
    causal, nar = results["variants"][0], results["variants"][2]
    for outcome, share in (("correct", 0.55), ("mixed", 0.41), ("wrong", 0.04)):
        nar["metrics"][f"{outcome}/mask_predict_k1"] = metric(share)
    causal["metrics"][f"exact_match/{FAKE}"] = metric(1.0)
    causal["metrics"][f"target_passes_per_token/{FAKE}"] = metric(0.25)
    headers, rows = tables.quality_table(results)
    assert headers[5:] == ["correct", "mixed", "wrong", "target passes per token"]
    row = next(r for r in rows if r[:2] == ["copy_nar", "mask-predict K=1"])
    assert row[5:8] == ["55.0%", "41.0%", "4.0%"]
    row = next(r for r in rows if r[:2] == ["causal", "fake decoder"])
    assert row[2] == "exact-parallel" and row[-1] == "0.25"


def test_a_metric_of_a_table_of_its_own_gets_that_table(results):
    results["metrics_info"].append(
        {
            "name": "param_norm",
            "label": "‖θ‖",
            "format": "number",
            "table": "Parameters",
            "per_decoder": False,
            "paired_with": None,
            "hidden": False,
            "verdicts": [],
            "method": "",
        }
    )
    results["variants"][1]["metrics"]["param_norm"] = metric(3.14159)
    assert tables.own_tables(results) == [("Parameters", (["variant", "‖θ‖"], [["full", "3.14"]]))]
    assert "‖θ‖" not in tables.summary_table(results)[0]


def test_timed_tables_follow_their_column_descriptions(results):
    sampling = next(t for t in results["tables_info"] if t["name"] == "sampling")
    headers, rows = tables.timed_table(results, sampling, results["speed"]["sampling"])
    assert headers[:2] == ["decoder", "family"]
    # The last column, a diffusion row's model calls per block, is "—" where a row has none.
    assert rows[0] == ["AR (cache)", "AR", "1", "8", "56", "100.00", "1.786", "560", "1.00", "—"]
    with_calls = dict(results["speed"]["sampling"][0], calls_per_block=3.25)
    assert tables.timed_table(results, sampling, [with_calls])[1][0][-1] == "3.2"
    assert tables.speed_note(results["speed"]).startswith(
        "Timed on the shape of **causal** (2 layers, d_model 32, 4 heads"
    )
