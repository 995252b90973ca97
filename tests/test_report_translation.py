"""The report on a translation task: BLEU and chrF columns, sacrebleu signatures, text samples,
and the encoder-decoder marked in the summary; from test_report's results dict."""

import os

import pytest
from test_report import _metric, _record, make_results

from evaluation import report
from evaluation.report import tables as report_tables

SIGNATURES = {
    "bleu": "nrefs:1|bs:300|seed:12345|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
    "chrf": "nrefs:1|bs:300|seed:12345|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0",
}


@pytest.fixture
def results():
    return make_results()


def _with_translation(results: dict) -> dict:
    """The results plus a translation task: a causal variant, a full-mask one decoded honestly,
    and a CMLM one whose baseline is the causal one; BLEU and chrF as quality.py writes them."""
    sample = {
        "source": "Ich trinke <b>Kaffee</b> & Tee.",
        "reference": "I drink <b>coffee</b> & tea.",
        "hypothesis": "I drink coffee | tea.\x13",  # A control character: shown as �.
    }
    for name, kind, decoder, bleu, chrf, objective in (
        ("causal_de_en", "causal", "AR (cache)", 21.34, 45.6, "teacher_forcing"),
        ("full_de_en", "full", "AR (no cache, honest)", 3.21, 20.5, "teacher_forcing"),
        ("cmlm_de_en", "prefix_full", "mask-predict K=4", 18.3, 44.0, "masked"),
    ):
        record = _record(name, kind, 0.0, {decoder: 0.02}, objective=objective)
        record["task"] = "tfds_translation"
        record["metrics"][f"bleu/{decoder}"] = _metric(bleu, example_sem=1.2)
        record["metrics"][f"chrf/{decoder}"] = _metric(chrf, example_sem=0.8)
        record["signatures"] = dict(SIGNATURES)
        record["samples"] = {decoder: [sample]}
        results["variants"].append(record)
    results["variants"][-1]["baseline"] = "causal_de_en"
    return results


def test_translation_variants_get_bleu_and_chrf_columns_and_verdicts(results):
    base = ["variant", "decoder", "family", "exact match", "token accuracy"]
    assert report_tables.quality_table(results)[0] == base  # No BLEU: the table as before.
    headers, rows = report_tables.quality_table(_with_translation(results))
    assert headers == [*base, "BLEU", "chrF"]
    cells = {tuple(row[:2]): row[5:] for row in rows}
    assert cells["causal_de_en", "AR (cache)"] == ["21.3 ± 1.2†", "45.6 ± 0.8†"]
    assert cells["cmlm_de_en", "mask-predict K=4"] == ["18.3 ± 1.2†", "44.0 ± 0.8†"]
    assert cells["causal", "AR (cache)"] == ["—", "—"]
    text = report.verdicts(results)
    assert "causal_de_en: AR (cache) BLEU 21.3, chrF 45.6 on tfds_translation." in text
    assert (
        "cmlm_de_en: mask-predict K=4 BLEU 18.3, chrF 44.0 on tfds_translation; its BLEU is 3.0 "
        "points below AR's (21.3)." in text
    )
    assert (
        "full_de_en: decoded honestly (AR (no cache, honest)), BLEU 3.2 on tfds_translation is "
        "18.1 points below the causal causal_de_en's 21.3 (AR (cache), same architecture)."
    ) in text
    assert not [v for v in text if "de_en" in v and "exact match" in v]  # BLEU says it instead.


def test_translation_report_shows_the_signatures_once_and_samples_as_text(tmp_path, results):
    path = report.write(str(tmp_path / "report"), _with_translation(results))
    files = {}
    for name in ("report.md", "index.html"):
        with open(os.path.join(path, name), encoding="utf-8") as f:
            files[name] = f.read()
    markdown, html = files["report.md"], files["index.html"]
    for signature in SIGNATURES.values():
        assert markdown.count(signature) == html.count(signature) == 1
    assert f"<code>{SIGNATURES['bleu']}</code>" in html
    assert "source:     Ich trinke <b>Kaffee</b> & Tee.\n" in markdown
    assert "hypothesis: I drink coffee | tea.�\n" in markdown
    assert '<table class="samples">' in html and "<b>Kaffee" not in html  # Escaped text.
    assert '<td class="text">Ich trinke &lt;b&gt;Kaffee&lt;/b&gt; &amp; Tee.</td>' in html
    assert "<pre>^ab|  →  ab$" in html  # The synthetic variants keep their sample lines.
    again = report.render(report.read_results(path))
    assert again["report.md"] == markdown and again["index.html"] == html


def test_the_summary_marks_an_encoder_decoder():
    from evaluation.report import tables

    record = {"mask_kind": "causal", "config": {"model": {"architecture": "encoder_decoder"}}}
    assert tables._mask(record) == "enc-dec, causal"
    assert tables._mask({"mask_kind": "prefix", "config": {"model": {}}}) == "prefix"
