"""The report: verdicts from numbers, formatting, atomic writing, purity, and the HTML in a real
browser; all from a hand-made results dict (schema 2)."""

import copy
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from evaluation import report
from evaluation.report import rendering
from evaluation.report import tables as report_tables
from evaluation.report.tables import NON_AR_OBJECTIVES, fmt
from training.config import MASKED_OBJECTIVES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIGURES = {
    "dependency_maps.png",
    "attention_maps.png",
    "losses.png",
    "loss_curves.png",
    "sampling_speed.png",
    "quality_latency.png",
    "training_speed.png",
}
DECODERS = {
    "AR (cache)": {"family": "AR", "needs": None, "description": "Greedy, with a *KV cache*."},
    "AR (no cache, honest)": {"family": "AR", "needs": None, "description": "Recomputes all."},
    "mask-predict K=1": {"family": "non-AR", "needs": None, "description": "One pass."},
    "mask-predict K=4": {"family": "non-AR", "needs": None, "description": "Four passes."},
    "fake decoder": {"family": "exact-parallel", "needs": "draft", "description": "Made up."},
}


def _metric(mean, sem=None, example_sem=None, per_seed=None):
    per_seed = per_seed or [mean]
    return {
        "mean": mean,
        "sem": sem,
        "n_seeds": len(per_seed),
        "per_seed": per_seed,
        "per_seed_sem": [example_sem] * len(per_seed),
    }


def _pictures(seed):
    rng = np.random.default_rng(seed)
    return {
        "dependency_map": np.tril(rng.random((5, 5))).tolist(),
        "attention": (np.tril(np.ones((2, 5, 5))) / np.arange(1, 6)[:, None]).tolist(),
        "labels": list("^ab|a"),
        "prefix_length": 4,
    }


def _record(name, kind, leak, exact_match, losses=None, objective="teacher_forcing"):
    metrics = {
        "perturbation_leakage": _metric(leak),
        "dependency_future_share": _metric(0.0 if leak == 0 else 0.3),
    }
    if losses is not None:
        tf, honest, random_loss = losses
        metrics |= {
            "loss_teacher_forced": _metric(tf, example_sem=0.001),
            "loss_honest": _metric(honest, example_sem=0.001),
            "leak_gap": _metric(honest - tf, example_sem=0.01),
            "random_loss": _metric(random_loss, example_sem=0.01),
            "random_floor": _metric(float(np.log(16))),
        }
    for decoder, em in exact_match.items():
        metrics[f"exact_match/{decoder}"] = _metric(em, example_sem=0.01)
        metrics[f"token_accuracy/{decoder}"] = _metric(1.0, example_sem=0.0)
    return {
        "name": name,
        "task": "copy",
        "mask_kind": kind,
        "objective": objective,
        "seeds": [0],
        "steps": [40],
        "num_steps": 40,
        "num_params": 123456,
        "config": {},
        "baseline": None,
        "metrics": metrics,
        "samples": {d: [f"^ab|  →  ab$   (reference ab$) {d}"] for d in exact_match},
        "pictures": _pictures(len(name)),
        "curves": {"0": {"train": [[0, 3.0], [10, 1.0]], "eval": [[10, 1.1]], "tokens_per_s": 1e4}},
        "train_tokens_per_s": 1e4,
    }


def _sampling_row(decoder, new_tokens, latency_s, batch_size=1, prompt_len=8):
    return {
        "decoder": decoder,
        "family": DECODERS[decoder]["family"],
        "batch_size": batch_size,
        "prompt_len": prompt_len,
        "new_tokens": new_tokens,
        "length": prompt_len + new_tokens,
        "latency_s": latency_s,
        "ms_per_token": 1e3 * latency_s / new_tokens,
        "tokens_per_s": batch_size * new_tokens / latency_s,
        "compile_s": 1.0,
    }


def _speed():
    sampling = [
        _sampling_row(decoder, new_tokens, latency_s)
        for decoder, new_tokens, latency_s in [
            ("AR (cache)", 56, 0.1),
            ("AR (no cache, honest)", 56, 0.2),
            ("AR (cache)", 120, 0.2),
            ("AR (no cache, honest)", 120, 0.8),
            ("mask-predict K=1", 56, 0.02),
            ("fake decoder", 56, 0.2),
        ]
    ]
    training = [
        {
            "objective": objective,
            "seq_len": 64,
            "batch_size": 8,
            "step_time_s": step_s,
            "tokens_per_s": 512 / step_s,
            "compile_s": 1.0,
        }
        for objective, step_s in [("teacher_forcing", 0.01), ("sequential", 0.2)]
    ]
    model = {"num_layers": 2, "d_model": 32, "num_heads": 4, "d_ff": 64, "vocab_size": 23}
    return {
        "variant": "causal",
        "model": model | {"max_len": 128, "attention_mask_kind": "causal"},
        "note": "Random weights; median of 5 runs.",
        "sampling": sampling,
        "training": training,
    }


@pytest.fixture
def results():
    return make_results()


def make_results() -> dict:
    """A results dict with a causal, a full-mask and a CMLM variant (test_report_*.py share it)."""
    nar = _record(
        "copy_nar",
        "prefix_full",
        5.0,
        {"mask-predict K=1": 0.9, "mask-predict K=4": 0.996, "fake decoder": 1.0},
        objective="masked",
    )
    nar["baseline"] = "causal"
    full = _record("full", "full", 11.0, {"AR (no cache, honest)": 0.1}, losses=(0.001, 3.9, 0.2))
    return {
        "schema_version": 2,
        "experiment": "unit",
        "workdir": "/x/runs/unit",
        "created": "now",
        "device": {
            "platform": "cpu",
            "kind": "cpu",
            "count": 1,
            "host_cpu": "x86_64",
            "host_cores": 2,
        },
        "commit": "unknown",
        "commit_dirty": None,
        "versions": {"jax": "0"},
        "eval_config": {},
        "decoders": DECODERS,
        "untrained_variants": [],
        "variants": [
            _record("causal", "causal", 0.0, {"AR (cache)": 1.0}, losses=(0.02, 0.02, 2.9)),
            full,
            nar,
        ],
        "speed": _speed(),
    }


def test_verdicts_are_computed_from_the_numbers(results):
    text = "\n".join(report.verdicts(results))
    assert "causal: perturbation leakage is exactly 0.0" in text
    assert "full: changing the tokens after t moves the logits at positions ≤ t by up to 11" in text
    assert (
        "full: teacher-forced loss 0.001 but honest loss 3.9 (causal on copy: 0.02 / 0.02)" in text
    )
    assert "causal: honest loss 0.02 = teacher-forced loss 0.02" in text
    assert "full: loss 0.2 on uniform random tokens is below the floor ln(16)" in text
    assert "causal: loss 2.9" not in text  # Above the floor proves nothing; no claim is made.
    assert "causal: AR (cache) exact match 100.0% on copy." in text
    assert "2.0× faster at 64 tokens, 4.0× faster at 128 tokens; the speed-up grows" in text
    assert "(20.0×)" in text


def test_non_ar_verdicts_compare_with_the_baseline(results):
    text = "\n".join(report.verdicts(results))
    assert "copy_nar: mask-predict K=1 is 10.0 points below AR exact match on copy" in text
    assert "copy_nar: mask-predict K=4 is within 0.4 points of AR exact match on copy" in text
    assert "copy_nar: fake decoder matches AR exact match on copy (100.0% vs 100.0%)." in text
    assert (
        "At batch 1, 8 prompt + 56 new tokens, AR (cache) takes 100.0 ms; mask-predict K=1 takes "
        "20.0 ms (5.0x faster); fake decoder takes 200.0 ms (AR 2.0x faster)." in text
    )
    results["variants"][2]["baseline"] = None  # Without a baseline: the plain sentence.
    assert "copy_nar: mask-predict K=1 exact match 90.0% on copy." in report.verdicts(results)


def test_a_multi_modal_task_gets_outcome_columns_and_its_own_verdict(results):
    record = results["variants"][-1]
    decoder = "mask-predict K=1"
    for outcome, share in (("correct", 0.55), ("mixed", 0.41), ("wrong", 0.04)):
        record["metrics"][f"{outcome}/{decoder}"] = _metric(share)
    headers, rows = report_tables.quality_table(results)
    assert headers[-3:] == ["correct", "mixed", "wrong"]
    row = next(r for r in rows if r[:2] == [record["name"], decoder])
    assert row[-3:] == ["55.0%", "41.0%", "4.0%"]
    assert (
        f"{record['name']}: {decoder} on {record['task']}: 55.0% correct, 41.0% mixed (tokens of "
        "both modes), 4.0% wrong otherwise."
    ) in report.verdicts(results)


def test_distilled_and_exact_parallel_variants_get_their_own_verdicts(results):
    raw, student = results["variants"][-1], copy.deepcopy(results["variants"][-1])
    raw["config"] = {"data": {"task": "copy", "num_symbols": 16, "distilled_dir": ""}}
    student["name"] = "copy_nar_distilled"
    student["config"] = {"data": {**raw["config"]["data"], "distilled_dir": "runs/d"}}
    for record, mixed in ((raw, 0.41), (student, 0.03)):
        for outcome, share in (("correct", 1 - mixed), ("mixed", mixed), ("wrong", 0.0)):
            record["metrics"][f"{outcome}/mask-predict K=1"] = _metric(share)
    causal = results["variants"][0]
    for name, value in (("equals_greedy", 1.0), ("target_passes_per_token", 0.25),
                        ("acceptance", 0.8), ("exact_match", 1.0)):  # fmt: skip
        causal["metrics"][f"{name}/fake decoder"] = _metric(value)
    results["variants"].append(student)
    text = report.verdicts(results)
    assert (
        "mask-predict K=1 (masked): 41.0% mixed outputs on raw data (copy_nar); 3.0% after "
        "distillation (copy_nar_distilled)." in text
    )
    assert (
        "causal: fake decoder gave the same tokens as greedy AR on copy, with 0.25 target passes "
        "per token, 80% of drafts accepted." in text
    )
    headers, rows = report_tables.quality_table(results)
    row = next(r for r in rows if r[:2] == ["causal", "fake decoder"])
    assert dict(zip(headers, row, strict=True))["target passes per token"] == "0.25"


def test_verdicts_survive_absent_pieces(results):
    results["speed"] = {}
    for record in results["variants"]:
        record["metrics"] = {}
    assert report.verdicts(results) == []
    results["variants"] = []
    assert report.verdicts(results) == []


def test_fmt_marks_one_seed_and_percentages():
    assert fmt(_metric(0.0)) == "0.0"
    assert fmt(_metric(1.23456, sem=0.01, per_seed=[1.2, 1.3])) == "1.23 ± 0.01"
    assert fmt(_metric(0.5, example_sem=0.02)) == "0.5 ± 0.02†"
    assert fmt(_metric(0.991, example_sem=0.004), percent=True) == "99.1% ± 0.4%†"
    assert fmt(_metric(44.0, sem=0.812, per_seed=[43, 45]), points=True) == "44.0 ± 0.8"
    assert fmt(None) == "—"


def test_a_new_decoder_needs_no_report_change(results, monkeypatch):
    monkeypatch.setattr(rendering, "figures", lambda results: {})  # Text only: faster.
    files = report.render(results)
    for text in (files["report.md"], files["index.html"]):
        assert text.count("fake decoder") >= 5  # Quality, speed, verdicts, samples, methods.
    markdown = files["report.md"]
    assert "| copy_nar | fake decoder | exact-parallel | 100.0% ± 1.0%† | 100.0% |" in markdown
    assert "| fake decoder | exact-parallel | 1 | 8 | 56 | 200.00 |" in markdown
    assert "*fake decoder* (exact-parallel; needs a second model: draft): Made up." in markdown


def test_report_content(results):
    results["untrained_variants"] = ["prefix"]
    results["variants"][1]["steps"] = [10]
    files = report.render(results)
    markdown, html = files["report.md"], files["index.html"]
    assert markdown.startswith("# unit: auto-regressive vs leaky vs non-AR decoding\n")
    assert "> **Warning**: not trained (no checkpoint)" in markdown and "**prefix**" in markdown
    assert "full: evaluated at step 10 of 40 (seed 0)" in markdown
    assert "| full | copy | full | teacher_forcing | 1 | 123,456 | 10/40 |" in markdown
    assert "max \\|Δ logits\\| (past)" in markdown  # A literal | would end the cell.
    assert "Timed on the shape of **causal** (2 layers, d_model 32, 4 heads" in markdown
    assert "![Dependency maps](dependency_maps.png)" in markdown
    # Inline Markdown becomes HTML; text is escaped.
    assert "<li><strong>Perturbation</strong>: every real token" in html
    assert "Greedy, with a <em>KV cache</em>." in html
    assert "<b>Warning</b>: not trained" in html and "**" not in html


def test_the_renderer_imports_no_model_code(tmp_path, results):
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "results.json").write_text(json.dumps(results))
    script = (
        "import sys; import evaluation.report as r\n"
        f"files = r.render(r.read_results({str(report_dir)!r}))\n"
        "assert len(files) == 10, sorted(files)\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(top & {'jax', 'model', 'training', 'data', 'flax'}))\n"
        "print(sorted(m for m in sys.modules if m.startswith('evaluation.')"
        " and not m.startswith('evaluation.report')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout == "[]\n[]\n", out.stdout + out.stderr


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


def test_the_renderer_knows_the_non_ar_objectives_that_training_defines():
    assert NON_AR_OBJECTIVES == MASKED_OBJECTIVES
