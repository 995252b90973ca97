"""The rendered report (evaluation/report/rendering.py, sections.py, figures.py): its content in
Markdown and HTML, a new decoder with no report change, a renderer free of model code, and the
HTML in a real browser."""

import copy
import json
import os
import shutil
import subprocess
import sys

import pytest
from report_fixtures import FIGURES, make_results

from evaluation import report
from evaluation.report import rendering

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def results():
    return make_results()


def test_a_new_decoder_needs_no_report_change(results, monkeypatch):
    monkeypatch.setattr(rendering, "figures", lambda results: {})  # Text only: faster.
    files = report.render(results)
    for text in (files["report.md"], files["index.html"]):
        assert text.count("fake decoder") >= 5  # Quality, speed, verdicts, samples, methods.
    markdown = files["report.md"]
    assert "| copy_nar | fake decoder | exact-parallel | 100.0% ± 1.0%† | 100.0% |" in markdown
    assert "| fake decoder | exact-parallel | 1 | 8 | 56 | 200.00 |" in markdown
    assert "*fake decoder* (exact-parallel; needs a second model: draft): Made up." in markdown


@pytest.mark.slow
def test_report_content(results):
    results["untrained_variants"] = ["prefix"]
    results["variants"][1]["steps"] = [10]
    files = report.render(results)
    markdown, html = files["report.md"], files["index.html"]
    assert markdown.startswith("# unit: auto-regressive vs leaky vs non-AR decoding\n")
    assert "> **Warning**: not trained (no checkpoint)" in markdown and "**prefix**" in markdown
    assert "full: evaluated at step 10 of 40 (seed 0)" in markdown
    assert "### copy\n\n- causal: perturbation leakage is exactly 0.0" in markdown
    assert "<h3>Speed</h3>" in html
    assert "| full | copy | full | teacher_forcing | 1 | 123,456 | 10/40 |" in markdown
    assert "max \\|Δ logits\\| (past)" in markdown  # A literal | would end the cell.
    assert "Timed on the shape of **causal** (2 layers, d_model 32, 4 heads" in markdown
    assert "![Dependency maps](dependency_maps.png)" in markdown
    # The methods come from the descriptions: each metric's, the tables', the families.
    assert "- **Honest loss**: the held-out next-token loss" in markdown
    assert "- **Speed**: random weights" in markdown
    assert "*non-AR*: every target token in parallel" in markdown
    # Inline Markdown becomes HTML; text is escaped.
    assert "<li><strong>Perturbation</strong>: every real token" in html
    assert "Greedy, with a <em>KV cache</em>." in html
    assert "<b>Warning</b>: not trained" in html and "**" not in html


@pytest.mark.slow
def test_the_renderer_imports_no_model_code(tmp_path, results):
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "results.json").write_text(json.dumps(results))
    script = (
        "import sys; import evaluation.report as r\n"
        f"files = r.render(r.read_results({str(report_dir)!r}))\n"
        "assert len(files) == 11, sorted(files)\n"  # 3 text files and 8 figures.
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(top & {'jax', 'model', 'training', 'data', 'flax'}))\n"
        "print(sorted(m for m in sys.modules if m.startswith('evaluation.')"
        " and not m.startswith('evaluation.report')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout == "[]\n[]\n", out.stdout + out.stderr


@pytest.mark.slow
@pytest.mark.browser
def test_index_html_renders_every_image_in_chromium(tmp_path, results):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install chromium)")
    path = report.write(str(tmp_path / "report"), copy.deepcopy(results))
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        f"file://{path}/index.html",
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
    count = len([name for name in os.listdir(path) if name.endswith(".png")])
    assert count == len(FIGURES)
    assert f"<title>images {count}/{count}</title>" in dom, dom[:300]
    assert "Verdicts" in dom and "<table>" in dom


@pytest.mark.slow
def test_translation_report_shows_the_signatures_once_and_samples_as_text(tmp_path, results):
    from test_report_verdicts import SIGNATURES, with_translation

    path = report.write(str(tmp_path / "report"), with_translation(results))
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
