"""The report: verdicts from numbers, formatting, atomic writing, and the HTML in a real browser."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from evaluation import report


def _metric(mean, sem=None, example_sem=None, per_seed=None):
    per_seed = per_seed or [mean]
    return {
        "mean": mean,
        "sem": sem,
        "n_seeds": len(per_seed),
        "per_seed": per_seed,
        "per_seed_sem": [example_sem] * len(per_seed),
    }


def _record(name, kind, tf, honest, leak, random_loss):
    metrics = {
        "perturbation_leakage": _metric(leak),
        "dependency_future_share": _metric(0.0 if leak == 0 else 0.3),
        "loss_teacher_forced": _metric(tf, example_sem=0.001),
        "loss_honest": _metric(honest, example_sem=0.001),
        "leak_gap": _metric(honest - tf, example_sem=0.01),
        "random_loss": _metric(random_loss, example_sem=0.01),
        "random_floor": _metric(float(np.log(16))),
        "exact_match/AR (cache)": _metric(1.0 if kind == "causal" else 0.1, example_sem=0.01),
        "token_accuracy/AR (cache)": _metric(1.0, example_sem=0.0),
    }
    curves = {"0": {"train": [[0, 3.0], [10, 1.0]], "eval": [[10, 1.1]], "tokens_per_s": 1e4}}
    return {
        "name": name,
        "task": "copy",
        "mask_kind": kind,
        "objective": "teacher_forcing",
        "seeds": [0],
        "steps": [10],
        "metrics": metrics,
        "curves": curves,
        "samples": {"AR (cache)": ["^ab|  →  ab$   (reference ab$) ✓"]},
    }


SPEED = {
    "sampling": [
        {
            "decoder": d,
            "batch_size": 1,
            "length": n,
            "new_tokens": n - 8,
            "latency_s": s,
            "tokens_per_s": (n - 8) / s,
            "ms_per_token": 1e3 * s / (n - 8),
            "compile_s": 1.0,
        }
        for d, n, s in [
            ("cache", 64, 0.1),
            ("no cache", 64, 0.2),
            ("cache", 128, 0.2),
            ("no cache", 128, 0.8),
        ]
    ],
    "training": [
        {
            "objective": o,
            "seq_len": 64,
            "batch_size": 8,
            "step_time_s": s,
            "tokens_per_s": 512 / s,
            "compile_s": 1.0,
        }
        for o, s in [("teacher_forcing", 0.01), ("sequential", 0.2)]
    ],
}


@pytest.fixture
def records():
    return [
        _record("causal", "causal", 0.02, 0.02, 0.0, 2.9),
        _record("full", "full", 0.001, 3.9, 11.0, 0.2),
    ]


def test_verdicts_are_computed_from_the_numbers(records):
    text = "\n".join(report.verdicts(records, SPEED))
    assert "causal: perturbation leakage is exactly 0.0" in text
    assert "full: changing the tokens after t moves the logits at positions ≤ t by up to 11" in text
    assert (
        "full: teacher-forced loss 0.001 but honest loss 3.9 (causal on copy: 0.02 / 0.02)" in text
    )
    assert "causal: honest loss 0.02 = teacher-forced loss 0.02" in text
    assert "full: loss 0.2 on uniform random tokens is below the floor ln(16)" in text
    assert "causal: loss 2.9" not in text  # Above the floor proves nothing; no claim is made.
    assert "2.0× faster at 64 tokens, 4.0× faster at 128 tokens; the speed-up grows" in text
    assert "(20.0×)" in text


def test_fmt_marks_one_seed_and_percentages():
    assert report.fmt(_metric(0.0)) == "0.0"
    assert report.fmt(_metric(1.23456, sem=0.01, per_seed=[1.2, 1.3])) == "1.23 ± 0.01"
    assert report.fmt(_metric(0.5, example_sem=0.02)) == "0.5 ± 0.02†"
    assert report.fmt(_metric(0.991, example_sem=0.004), percent=True) == "99.1% ± 0.4%†"
    assert report.fmt(None) == "—"


def _results(records):
    return {
        "schema_version": 1,
        "experiment": "unit",
        "workdir": "/x",
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
        "variants": records,
        "speed": SPEED,
        "verdicts": report.verdicts(records, SPEED),
    }


def _images(records):
    rng = np.random.default_rng(0)
    pictures = {
        r["name"]: {
            "dependency_map": np.tril(rng.random((5, 5))),
            "attention_LxTxT": np.tril(np.ones((2, 5, 5))) / np.arange(1, 6)[:, None],
            "labels": list("^ab|a"),
            "prefix_length": 4,
        }
        for r in records
    }
    return report.figures(records, pictures, SPEED)


def test_write_report_swaps_in_a_complete_report(tmp_path, records):
    images = _images(records)
    assert set(images) == {
        "dependency_maps.png",
        "attention_maps.png",
        "losses.png",
        "loss_curves.png",
        "sampling_speed.png",
        "training_speed.png",
    }
    path = report.write_report(str(tmp_path), _results(records), images)
    names = set(os.listdir(path))
    assert {"report.md", "index.html", "results.json"} | set(images) <= names
    with open(os.path.join(path, "results.json")) as f:
        assert json.load(f)["variants"][1]["name"] == "full"
    assert sorted(os.listdir(tmp_path)) == ["report"]  # No staging folders left behind.
    with open(os.path.join(path, "report.md")) as f:
        markdown = f.read()
    assert "![Dependency maps](dependency_maps.png)" in markdown and "| full |" in markdown


def test_failed_render_leaves_the_old_report_intact(tmp_path, records):
    old = tmp_path / "report"
    old.mkdir()
    (old / "index.html").write_text("the good old report")

    def broken(results, images):
        raise RuntimeError("rendering failed half-way")

    with pytest.raises(RuntimeError):
        report.write_report(str(tmp_path), _results(records), {"a.png": b"png"}, render=broken)
    assert (old / "index.html").read_text() == "the good old report"
    assert sorted(os.listdir(tmp_path)) == ["report"]


def test_results_json_rejects_nan(tmp_path, records):
    records[0]["metrics"]["loss_honest"]["mean"] = float("nan")
    with pytest.raises(ValueError):
        report.write_report(str(tmp_path), _results(records), {})
    assert not os.path.exists(tmp_path / "report")


@pytest.mark.browser
def test_index_html_renders_every_image_in_chromium(tmp_path, records):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install chromium)")
    path = report.write_report(str(tmp_path), _results(records), _images(records))
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
    assert "<title>images 6/6</title>" in dom, dom[:300]
    assert "Verdicts" in dom and "<table>" in dom


def test_non_ar_table_cells_are_formatted_by_column():
    from evaluation.html import _cell

    assert _cell("exact_match", 0.99609375) == "99.6%"
    assert _cell("token_accuracy", 1) == "100.0%"
    assert _cell("latency_s", 0.006228) == "6.23 ms"
    assert _cell("compile_s", 3.421) == "3.42 s"
    assert _cell("tokens_per_s", 5138.4) == "5,138"
    assert _cell("batch_size", 64) == "64"
    assert _cell("decoder", "mask-predict K=4") == "mask-predict K=4"
