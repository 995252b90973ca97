"""Verdicts (evaluation/report/verdicts.py): each rule computed from the numbers, grouped by task,
and a metric that carries a generic rule speaks with no change to the report."""

import copy

import pytest
from report_fixtures import FAKE, make_results, metric, record, sampling_row

from evaluation import decoders, report
from evaluation.decoders import diffusion
from evaluation.report import rendering
from evaluation.report.rules import RULES
from evaluation.report.verdicts import verdict_groups

SIGNATURES = {"bleu": "nrefs:1|tok:13a", "chrf": "nrefs:1|nc:6"}


@pytest.fixture
def results():
    return make_results()


def with_translation(results: dict) -> dict:
    """The results plus a translation task: a causal variant, a full-mask one decoded honestly,
    and a CMLM one whose baseline is the causal one; BLEU and chrF as quality.py writes them."""
    sample = {
        "source": "Ich trinke <b>Kaffee</b> & Tee.",
        "reference": "I drink <b>coffee</b> & tea.",
        "hypothesis": "I drink coffee | tea.\x13",  # A control character: shown as �.
    }
    for name, kind, decoder, bleu, chrf, objective_id in (
        ("causal_de_en", "causal", "ar_cache", 21.34, 45.6, "teacher_forcing"),
        ("full_de_en", "full", "ar_no_cache", 3.21, 20.5, "teacher_forcing"),
        ("cmlm_de_en", "prefix_full", "mask_predict_k4", 18.3, 44.0, "masked"),
    ):
        variant = record(name, kind, 0.0, {decoder: 0.02}, objective=objective_id)
        variant["task"] = "wmt (de→en)"
        variant["metrics"][f"bleu/{decoder}"] = metric(bleu, example_sem=1.2)
        variant["metrics"][f"chrf/{decoder}"] = metric(chrf, example_sem=0.8)
        variant["signatures"] = dict(SIGNATURES)
        variant["samples"] = {decoder: [sample]}
        results["variants"].append(variant)
    results["variants"][-1]["baseline"] = "causal_de_en"
    return results


def test_leakage_loss_and_floor_verdicts_are_computed_from_the_numbers(results):
    text = "\n".join(report.verdicts(results))
    assert "causal: perturbation leakage is exactly 0.0" in text
    assert "full: changing the tokens after t moves the logits at positions ≤ t by up to 11" in text
    assert "copy_nar: changing the tokens" in text and "(by design: a CMLM model" in text
    assert (
        "full: teacher-forced loss 0.001 but honest loss 3.9 (causal on copy: 0.02 / 0.02)" in text
    )
    assert "causal: honest loss 0.02 = teacher-forced loss 0.02" in text
    assert "full: loss 0.2 on uniform random tokens is below the floor ln(16)" in text
    assert "causal: loss 2.9" not in text  # Above the floor proves nothing; no claim is made.
    assert "causal: AR (cache) exact match 100.0% on copy." in text
    assert "2.0× faster at 64 tokens, 4.0× faster at 128 tokens; the speed-up grows" in text
    assert "(20.0×)" in text


def test_verdicts_are_grouped_by_task_then_across_variants_then_speed(results):
    groups = verdict_groups(with_translation(results))
    assert [g["title"] for g in groups] == ["copy", "wmt (de→en)", "Across variants", "Speed"]
    assert all(line.startswith(("causal:", "full:", "copy_nar:")) for line in groups[0]["entries"])


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


def test_a_multi_modal_task_gets_its_own_verdict(results):
    variant = results["variants"][-1]
    for outcome, share in (("correct", 0.55), ("mixed", 0.41), ("wrong", 0.04)):
        variant["metrics"][f"{outcome}/mask_predict_k1"] = metric(share)
    text = report.verdicts(results)
    assert (
        "copy_nar: mask-predict K=1 on copy: 55.0% correct, 41.0% mixed (tokens of both modes), "
        "4.0% wrong otherwise."
    ) in text
    assert "copy_nar: mask-predict K=1 is 10.0 points below" not in "\n".join(text)  # Replaced.


def test_distilled_and_exact_parallel_variants_get_their_own_verdicts(results):
    raw, student = results["variants"][-1], copy.deepcopy(results["variants"][-1])
    raw["config"] = {"data": {"task": "copy", "num_symbols": 16, "distilled_dir": ""}}
    student["name"] = "copy_nar_distilled"
    student["config"] = {"data": {**raw["config"]["data"], "distilled_dir": "runs/d"}}
    for variant, mixed in ((raw, 0.41), (student, 0.03)):
        for outcome, share in (("correct", 1 - mixed), ("mixed", mixed), ("wrong", 0.0)):
            variant["metrics"][f"{outcome}/mask_predict_k1"] = metric(share)
    causal = results["variants"][0]
    for name, value in (("equals_greedy", 1.0), ("target_passes_per_token", 0.25),
                        ("acceptance", 0.8), ("exact_match", 1.0)):  # fmt: skip
        causal["metrics"][f"{name}/{FAKE}"] = metric(value)
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


def test_translation_verdicts_use_bleu_and_compare_the_honest_decode(results):
    text = report.verdicts(with_translation(results))
    assert "causal_de_en: AR (cache) BLEU 21.3, chrF 45.6 on wmt (de→en)." in text
    assert (
        "cmlm_de_en: mask-predict K=4 BLEU 18.3, chrF 44.0 on wmt (de→en); its BLEU is 3.0 "
        "points below AR's (21.3)." in text
    )
    assert (
        "full_de_en: decoded honestly (AR (no cache, honest)), BLEU 3.2 on wmt (de→en) is "
        "18.1 points below the causal causal_de_en's 21.3 (AR (cache), same architecture)."
    ) in text
    assert not [v for v in text if "de_en" in v and "exact match" in v]  # BLEU says it instead.


def test_a_metric_with_generic_rules_speaks_with_no_report_change(results):
    results["metrics_info"].append(
        {
            "name": "param_norm",
            "label": "‖θ‖",
            "format": "number",
            "table": "summary",
            "per_decoder": False,
            "paired_with": None,
            "hidden": False,
            "verdicts": [
                {"rule": "state", "text": "{variant}: parameter norm {value} on {task}."},
                {"rule": "zero", "zero": "{variant}: all zero.", "nonzero": "{variant}: {largest}"},
            ],
            "method": "",
        }
    )
    results["variants"][0]["metrics"]["param_norm"] = metric(12.345)
    text = report.verdicts(results)
    assert "causal: parameter norm 12.3 on copy." in text and "causal: 12.3" in text
    assert not [line for line in text if line.startswith("full: parameter norm")]


def test_verdicts_survive_absent_pieces_and_name_an_unknown_rule(results):
    results["speed"] = {}
    for variant in results["variants"]:
        variant["metrics"] = {}
    assert report.verdicts(results) == []
    results["variants"] = []
    assert report.verdicts(results) == []
    results["variants"] = [record("causal", "causal", 0.0, {})]
    results["metrics_info"][0]["verdicts"] = [{"rule": "made_up"}]
    with pytest.raises(ValueError, match="Unknown verdict rule 'made_up'"):
        report.verdicts(results)
    assert "state" in RULES and "zero" in RULES


def test_results_written_before_decoders_had_params_still_render(results, monkeypatch):
    """Such results.json lack each decoder's params, and the parallel_steps rule named an id
    prefix: the rules that read params say nothing, every other verdict is unchanged."""
    results["metrics_info"] += [spec.to_json() for spec in diffusion.METRICS]
    for decoder, nll in (("diffusion_t2", 2.5), ("diffusion_t32", 2.0)):
        results["decoders"][decoder] = decoders.DECODERS[decoder].to_json()
        results["variants"][2]["metrics"][f"gen_nll/{decoder}"] = metric(nll, example_sem=0.1)
    current = report.verdicts(results)
    assert "copy_nar: with T=2 denoising steps per block" in "\n".join(current)
    for info in results["decoders"].values():
        del info["params"]
    gen_nll = next(spec for spec in results["metrics_info"] if spec["name"] == "gen_nll")
    gen_nll["verdicts"] = [{"rule": "parallel_steps", "prefix": "diffusion_t"}]
    assert report.verdicts(results) == [line for line in current if "denoising steps" not in line]
    monkeypatch.setattr(rendering, "figures", lambda results: {})  # Text only: faster.
    assert "copy_nar: mask-predict K=1" in report.render(results)["report.md"]


def test_the_speed_up_over_ar_by_batch_size_and_where_it_disappears(results):
    text = report.verdicts(results)
    assert (
        "mask-predict K=1 against AR (cache) by batch size (8 prompt + 56 new tokens): 5.00× at "
        "batch 1, 3.00× at batch 8, 0.80× at batch 16; its speed-up falls below 1 at batch 16."
    ) in text
    assert not [line for line in text if line.startswith("fake decoder against")]  # One batch.


def test_a_speed_up_that_stays_above_1_and_one_never_there(results):
    rule = {"rule": "batch_speedup", "against": "ar_cache", "families": ["non-AR", "diffusion"]}
    rows = [
        sampling_row(decoder, 24, latency_s, batch_size, prompt_len=1)
        for decoder, batch_size, latency_s in [
            ("ar_cache", 1, 0.4),
            ("ar_cache", 64, 0.8),
            ("mask_predict_k4", 1, 0.1),
            ("mask_predict_k4", 64, 0.4),
            ("mask_predict_k1", 1, 0.5),
            ("mask_predict_k1", 64, 1.6),
        ]
    ]
    # A diffusion decoder timed on another variant's blocks is named with that variant.
    lent = [dict(row, decoder="diffusion_t8", family="diffusion", variant="bd3_block16")
            for row in rows[2:4]]  # fmt: skip
    assert RULES["batch_speedup"][1](results, rows + lent, rule) == [
        "mask-predict K=1 against AR (cache) by batch size (1 prompt + 24 new tokens): 0.80× at "
        "batch 1, 0.50× at batch 64; it is slower than AR (cache) at every batch size timed.",
        "mask-predict K=4 against AR (cache) by batch size (1 prompt + 24 new tokens): 4.00× at "
        "batch 1, 2.00× at batch 64; its speed-up stays above 1 up to batch 64.",
        "diffusion_t8 on bd3_block16 against AR (cache) by batch size (1 prompt + 24 new "
        "tokens): 4.00× at batch 1, 2.00× at batch 64; its speed-up stays above 1 up to batch 64.",
    ]
