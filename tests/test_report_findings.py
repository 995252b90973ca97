"""evaluation/report/findings.py: the report opens with one row per claim, the variants it
holds for and their numbers, and every verdict is in exactly one row."""

import copy

import pytest
from report_fixtures import make_results

from evaluation.report import findings as findings_module
from evaluation.report.findings import findings, findings_table
from evaluation.report.rendering import render
from evaluation.report.verdicts import verdict_groups


def _two_tasks():
    """The fixture's variants on copy, and each again on reverse with other numbers."""
    results = make_results()
    again = []
    for record in results["variants"]:
        twin = copy.deepcopy(record)
        twin.update(name=f"{record['name']}_rev", task="reverse")
        if "perturbation_leakage" in twin["metrics"] and record["name"] == "full":
            twin["metrics"]["perturbation_leakage"]["per_seed"] = [13.0]
        again.append(twin)
    results["variants"] += again
    return results


def test_variants_that_read_the_same_claim_share_one_row_with_their_numbers():
    rows = {f["claim"]: f for f in findings(_two_tasks())}
    zero = rows["perturbation leakage is exactly 0.0 (fp32) in every seed; no scored prediction "
                "reads a later token."]  # fmt: skip
    assert zero["variants"] == ["causal", "causal_rev"] and zero["numbers"] == []
    leak = next(f for claim, f in rows.items() if claim.startswith("changing the tokens") and
                "full" in f["variants"])  # fmt: skip
    assert "by up to 11–13;" in leak["claim"] and leak["variants"] == ["full", "full_rev"]
    assert leak["numbers"] == ["full 11", "full_rev 13"]
    assert rows["AR (cache) exact match 100.0% on copy and reverse."]["variants"] == [
        "causal", "causal_rev",
    ]  # fmt: skip


def test_every_verdict_is_in_exactly_one_row():
    results = _two_tasks()
    by_variant = sum(len(g["entries"]) for g in verdict_groups(results) if g["scope"] == "task")
    across = sum(len(g["entries"]) for g in verdict_groups(results) if g["scope"] != "task")
    rows = findings(results)
    assert sum(len(f["variants"]) for f in rows) == by_variant
    assert sum(1 for f in rows if not f["variants"]) == across
    assert len(rows) < by_variant + across  # Grouped: fewer rows than verdicts.


@pytest.mark.slow
def test_the_report_opens_with_the_findings_and_folds_the_verdicts_under_them():
    results = _two_tasks()
    files = render(results)
    markdown, html = files["report.md"], files["index.html"]
    assert markdown.index("## Findings") < markdown.index("## Verdicts, variant by variant")
    assert html.index("<h2>Findings</h2>") < html.index("<details>") < html.index("<h3>copy</h3>")
    headers, rows = findings_table(results)
    assert headers == ["finding", "variants", "numbers"] and len(rows) == len(findings(results))


def test_a_decoders_label_is_a_name_so_its_numbers_stay_and_rows_stay_apart(monkeypatch):
    # Two mask-predict rows of one variant differ in K and beam: their labels are names, so
    # each is a row of its own, and a label's "K=1," leaves no stray comma behind.
    labels = {"mp1": "mask-predict K=1, predicted length (beam 1)",
              "mp4": "mask-predict K=4, predicted length (beam 3)"}  # fmt: skip
    results = {
        "decoders": {d: {"label": label, "family": "non-AR"} for d, label in labels.items()},
        "variants": [{"name": "glat", "task": "en-es"}],
    }
    sentences = [f"glat: {labels['mp1']} BLEU 0.1, chrF 7.6 on en-es.",
                 f"glat: {labels['mp4']} BLEU 0.1, chrF 6.5 on en-es."]  # fmt: skip
    monkeypatch.setattr(findings_module, "verdicts_of", lambda results, record: sentences)
    monkeypatch.setattr(findings_module, "verdict_groups", lambda results: [])
    rows = findings(results)
    assert [row["claim"] for row in rows] == [s.removeprefix("glat: ") for s in sentences]
    assert all(row["numbers"] == [] for row in rows)
