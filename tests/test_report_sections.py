"""evaluation/report/sections.py: the report's sections in order, the methods from the
descriptions, warnings for untrained and unfinished variants, and sample blocks."""

import pytest
from report_fixtures import make_results

from evaluation.report import sections, tables


@pytest.fixture
def results():
    return make_results()


def test_sections_come_in_order_and_figures_only_when_drawn(results):
    found = sections.sections(results, images={"losses.png": b""})
    titles = [s["title"] for s in found]
    assert titles[:3] == [
        "Findings",
        "Verdicts, variant by variant",
        tables.SUMMARY_TITLE,
    ]
    assert titles.index("Decoding speed") < titles.index("Training speed")
    assert "Teacher-forced vs honest loss" in titles and "Dependency maps" not in titles
    assert titles[-2:] == ["Sample generations", "How each number is measured"]


def test_methods_come_from_each_described_metric_and_table_then_the_decoders(results):
    methods = sections._methods(results)
    texts = [item["text"] for item in methods]
    measured = {k.partition("/")[0] for r in results["variants"] for k in r["metrics"]}
    metrics = [s for s in results["metrics_info"] if s["name"] in measured]
    described = [s["method"] for s in metrics + results["tables_info"]]
    assert texts[: len([m for m in described if m])] == [m for m in described if m]
    results["metrics_info"].append({"name": "never_measured", "method": "**unseen**"})
    assert "**unseen**" not in [item["text"] for item in sections._methods(results)]
    assert texts[-2].startswith("**Decoder families**: *AR*:")
    assert any("*fake decoder* (exact-parallel; needs a second model" in child
               for child in methods[-1]["children"])  # fmt: skip


def test_warnings_name_untrained_and_unfinished_variants(results):
    assert sections.warnings(results) == []
    results["untrained_variants"] = ["prefix"]
    results["variants"][0]["steps"] = [10]
    assert sections.warnings(results) == [
        "not trained (no checkpoint), so missing from every table and figure below: **prefix**.",
        "causal: evaluated at step 10 of 40 (seed 0)",
    ]


def test_a_translation_sample_is_a_row_and_labelled_lines():
    sample = {"source": "a\x13b", "reference": "r", "hypothesis": "h"}
    block = sections._sample_block("v", "AR (cache)", [sample])
    assert block["rows"] == [["a\ufffdb", "r", "h"]]
    assert block["lines"] == ["source:     a\ufffdb", "reference:  r", "hypothesis: h"]
