"""The latency evaluator (evaluation/latency.py) and the verdicts of the field's table
(evaluation/report/translation_rules.py), which read each decoder's params, never its id."""

import copy
import dataclasses

import numpy as np
import pytest
from report_fixtures import metric
from sacrebleu.metrics import BLEU

from evaluation import decoders, latency, scoring, translation
from evaluation.decoders import non_ar
from evaluation.report import speed_figures, tables, translation_rules
from evaluation.report.records import difference
from evaluation.run import load_run
from sections import LatencyConfig
from training import run_folder


def _settings(run, **latency_settings):
    overrides = {f"latency.{key}": value for key, value in latency_settings.items()}
    return run.config.eval.with_overrides(overrides)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["causal", "cmlm"])
def test_every_scored_decoder_is_timed_at_batch_1_and_the_large_batch(tiny_workdir, variant):
    run, _ = load_run(variant, 0, run_folder.run_dir(tiny_workdir, variant, 0))
    settings = _settings(run, batch_size=4, single_rows=2, repeats=1)
    found = latency.evaluate(run, settings, lambda line: None).metrics
    scored = [spec.id for spec, _ in scoring.scored_decoders(run, settings, False, print)]
    assert scored  # causal: AR and the speculative decoders (CMLM draft too); cmlm: mask-predict.
    assert found.pop("latency_batch_size") == (4.0, None)
    assert sorted(found) == sorted(
        f"{key}/{d}" for d in scored for key in ("latency_1", "latency_batch")
    )
    # Two batch-1 calls give a spread (the sem of their mean); one large-batch call none.
    for key, (ms, sem) in found.items():
        assert ms > 0 and (sem is None) == key.startswith("latency_batch/")
        assert sem is None or sem >= 0


@pytest.mark.slow
def test_latency_is_off_by_default(tiny_workdir):
    run, _ = load_run("causal", 0, run_folder.run_dir(tiny_workdir, "causal", 0))
    assert latency.evaluate(run, run.config.eval, print).metrics == {}


def test_a_batch_1_row_is_timed_on_its_own_prompt_width_not_the_batchs_widest():
    prompts = decoders.Prompts(
        np.arange(3 * 70).reshape(3, 70), np.array([70, 5, 30]), np.array([4, 4, 4]), 9
    )
    widths = [latency._alone(prompts, row).prompts_BxP.shape for row in range(3)]
    assert widths == [(1, 70), (1, 16), (1, 32)]  # The widest stays; the others their bucket.
    np.testing.assert_array_equal(latency._alone(prompts, 2).prompts_BxP[0], np.arange(140, 172))


def test_a_bad_latency_setting_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^eval.latency.single_rows must be >= 1, got 0.$"):
        LatencyConfig(batch_size=4, single_rows=0)


def _record(name, bleu, *, non_ar=True, distilled=False, baseline="ar", latency_ms=None):
    # BLEU with a bootstrap sem over sentences of 0.4 (one seed), so each difference of two has
    # a sem of hypot(0.4, 0.4) = 0.57: within noise up to 1.13.
    metrics = {f"bleu/{d}": metric(v, example_sem=0.4) for d, v in bleu.items()}
    metrics |= {f"exact_match/{d}": metric(0.0) for d in bleu}
    for d, (one, many) in (latency_ms or {}).items():  # Each timed with a 5% spread (sem).
        metrics[f"latency_1/{d}"] = metric(one, example_sem=0.05 * one)
        metrics[f"latency_batch/{d}"] = metric(many, example_sem=0.05 * many)
    if latency_ms:
        metrics["latency_batch_size"] = metric(64.0)
    return {
        "name": name,
        "task": "bible/en-es",
        "mask_kind": "full" if non_ar else "causal",
        "objective": "masked" if non_ar else "teacher_forcing",
        "model_kind": "masked" if non_ar else "next_token",
        "non_ar": non_ar,
        "baseline": baseline if non_ar else None,
        "config": {"data": {"distilled_dir": "runs/d" if distilled else ""}},
        "metrics": metrics,
    }


def _results():
    families = {"ar_cache": "AR", "speculative_cmlm8": "exact-parallel"}
    ids = [
        "mask_predict_k1_lb1",
        "mask_predict_k10_lb1",
        "mask_predict_k1_lb3",
        "mask_predict_k10_lb3",
    ]
    families |= {d: "non-AR" for d in ids}
    params = {d: decoders.DECODERS[d].params.to_json() for d in families}
    return {
        "decoders": {
            d: {"label": d, "family": f, "params": params[d]} for d, f in families.items()
        },
        "variants": [
            _record(
                "ar",
                {"ar_cache": 12.0, "speculative_cmlm8": 12.0},
                non_ar=False,
                latency_ms={"ar_cache": (100.0, 400.0), "speculative_cmlm8": (50.0, 800.0)},
            ),
            _record(
                "cmlm",
                dict(zip(ids, (2.0, 5.0, 3.0, 6.0), strict=True)),
                latency_ms={
                    "mask_predict_k1_lb1": (10.0, 200.0),
                    "mask_predict_k10_lb1": (80.0, 900.0),
                },
            ),
            # A distilled variant's task label names its teacher; its data is the same task's.
            _record("cmlm_distilled", {"mask_predict_k10_lb3": 9.5}, distilled=True)
            | {"task": "bible/en-es (distilled from ar)"},
        ],
    }


def test_the_gap_to_ar_is_given_raw_and_distilled_with_what_distillation_closes():
    rule = {"decoder": "mask_predict_k10_lb3", "against": "ar_cache"}
    lines = translation_rules.nar_gap(_results(), {}, rule)
    assert lines[0] == (
        "cmlm (masked, raw data): mask_predict_k10_lb3 BLEU 6.0 against ar_cache's 12.0 (ar): "
        "a gap of +6.0 ± 0.6."
    )
    assert lines[1].startswith(
        "cmlm_distilled (masked, distilled data): mask_predict_k10_lb3 BLEU 9.5"
    )
    assert lines[1].endswith(
        "on raw data (cmlm) the gap is 6.0, and distillation closes +3.5 ± 0.6 of it."
    )


def test_each_family_is_read_at_its_own_headline_decoder():
    results = _results()
    glat = _record("glat", {"mask_predict_k1_lb1": 8.0, "mask_predict_k10_lb3": 11.0})
    ctc = _record("ctc", {"ctc": 10.0})
    results["variants"] += [glat | {"objective": "glancing"}, ctc | {"objective": "ctc"}]
    rule = {
        "decoder": "mask_predict_k10_lb3",
        "against": "ar_cache",
        "by_objective": {"glancing": "mask_predict_k1_lb1", "ctc": "ctc"},
    }
    lines = translation_rules.nar_gap(results, {}, rule)
    assert lines[0].startswith("cmlm (masked, raw data): mask_predict_k10_lb3 BLEU 6.0")
    assert lines[2].startswith("glat (glancing, raw data): mask_predict_k1_lb1 BLEU 8.0")
    assert lines[3].startswith("ctc (ctc, raw data): ctc BLEU 10.0 against ar_cache's 12.0")


def test_a_gap_on_the_same_sentences_is_judged_by_a_paired_bootstrap():
    # Two outputs alike but on 2 sentences of 40: each corpus BLEU varies a lot over
    # resamplings, their difference less; the paired sem is below the independent one.
    references = [f"the word {i} is here and there in the text" for i in range(40)]
    half = [" ".join(r.split()[: 3 + i % 5]) for i, r in enumerate(references)]
    better = references[:2] + half[2:]
    texts = {"ar_cache": better, "mask_predict_k10_lb3": half}
    stats = {d: translation.sentence_stats(h, references) for d, h in texts.items()}
    results = _results()
    ar, cmlm = results["variants"][0], results["variants"][1]
    for record, decoder in ((ar, "ar_cache"), (cmlm, "mask_predict_k10_lb3")):
        record["sentences"] = {f"bleu/{decoder}": [stats[decoder]]}
        sem = translation.bootstrap_sem(BLEU(), texts[decoder], references, 300)
        record["metrics"][f"bleu/{decoder}"] = metric(
            BLEU().corpus_score(texts[decoder], [references]).score, example_sem=sem
        )
    paired = translation_rules.bleu_difference(ar, "ar_cache", cmlm, "mask_predict_k10_lb3")
    independent = difference(ar["metrics"]["bleu/ar_cache"],
                             cmlm["metrics"]["bleu/mask_predict_k10_lb3"])  # fmt: skip
    assert paired[0] == pytest.approx(independent[0]) and paired[0] > 0
    assert 0 < paired[1] < 0.8 * independent[1]
    ar["sentences"]["bleu/ar_cache"].append(stats["ar_cache"])  # Seeds 2 against 1: unpaired.
    assert translation_rules.bleu_difference(ar, "ar_cache", cmlm, "mask_predict_k10_lb3") == (
        independent
    )
    del cmlm["sentences"]  # Without each sentence's statistics: the independent bound.
    assert translation_rules.bleu_difference(ar, "ar_cache", cmlm, "mask_predict_k10_lb3") == (
        independent
    )


def test_a_difference_within_2_sem_is_called_noise():
    results = _results()
    results["variants"][2]["metrics"]["bleu/mask_predict_k10_lb3"] = metric(6.8, example_sem=0.4)
    rule = {"decoder": "mask_predict_k10_lb3", "against": "ar_cache"}
    line = translation_rules.nar_gap(results, {}, rule)[1]
    assert line.endswith("distillation closes +0.8 ± 0.6, within noise of it.")


def test_what_iterations_and_the_length_beam_buy():
    (line,) = translation_rules.iterations(_results(), {}, {})
    assert line.startswith("cmlm: BLEU by passes K, mask-predict, length beam 1: ")
    assert "mask-predict, length beam 1: 2.0, 5.0 at K = 1, 10 (K=1→10: +3.0 ± 0.6)" in line
    assert "mask-predict, length beam 3: 3.0, 6.0 at K = 1, 10 (K=1→10: +3.0 ± 0.6)" in line
    assert line.endswith(
        "length beam 3 over 1: +1.0 ± 0.6, within noise at K=1; +1.0 ± 0.6, within noise at K=10."
    )


@pytest.fixture
def cmlm_fast():
    """The K=4, length beam 3 mask-predict row, registered under an id that names neither."""
    spec = non_ar.predicted_length_spec(4, 3)
    spec = decoders.register(dataclasses.replace(spec, id="cmlm_fast", label="fast CMLM"))
    yield spec
    del decoders.DECODERS[spec.id]


def test_the_iterations_verdict_reads_the_spec_params_not_the_id(cmlm_fast):
    results = _results()
    used = decoders.lookup(["mask_predict_k1_lb3", cmlm_fast.id])
    results["decoders"] = decoders.describe(used)["decoders"]
    results["variants"] = [_record("cmlm", {"mask_predict_k1_lb3": 3.0, cmlm_fast.id: 4.5})]
    assert translation_rules.iterations(results, {}, {}) == [
        "cmlm: BLEU by passes K, mask-predict, length beam 3: 3.0, 4.5 at K = 1, 4 "
        "(K=1→4: +1.5 ± 0.6)."
    ]
    results["decoders"][cmlm_fast.id]["params"] = {"iterations": 4}  # The oracle length.
    assert translation_rules.iterations(results, {}, {}) == []


def _renamed(results: dict, names: dict[str, str]) -> dict:
    """The results with each decoder id renamed (its label kept), in metric keys too."""
    out = copy.deepcopy(results)
    out["decoders"] = {names[d]: info for d, info in out["decoders"].items()}
    for record in out["variants"]:
        record["metrics"] = {
            _renamed_key(key, names): metric for key, metric in record["metrics"].items()
        }
    return out


def _renamed_key(key: str, names: dict[str, str]) -> str:
    metric_name, _, decoder = key.partition("/")
    return f"{metric_name}/{names[decoder]}" if decoder else key


def test_renaming_every_decoder_id_changes_no_verdict():
    results = _results()
    names = {d: f"decoder_{i}" for i, d in enumerate(results["decoders"])}
    renamed = _renamed(results, names)
    gap = {"decoder": "mask_predict_k10_lb3", "against": "ar_cache"}
    speed = {"against": "ar_cache", "families": ["non-AR", "exact-parallel"]}
    for fn, rule, renamed_rule in (
        (translation_rules.iterations, {}, {}),
        (translation_rules.nar_gap, gap, {k: names[v] for k, v in gap.items()}),
        (translation_rules.latency_speedup, speed, {**speed, "against": names["ar_cache"]}),
    ):
        assert fn(renamed, {}, renamed_rule) == fn(results, {}, rule) != []


def test_results_without_decoder_params_skip_the_iterations_verdict_only():
    """results.json written before decoders had params: the rules that need them say nothing."""
    results = _results()
    speed = {"against": "ar_cache", "families": ["non-AR", "exact-parallel"]}
    before = translation_rules.latency_speedup(results, {}, speed)
    for info in results["decoders"].values():
        del info["params"]
    assert translation_rules.iterations(results, {}, {}) == []
    assert translation_rules.latency_speedup(results, {}, speed) == before


def test_the_measured_speed_up_names_where_it_disappears():
    # Each ratio's sem: ratio x hypot(5%, 5%) = 7.1% of it.
    rule = {"against": "ar_cache", "families": ["non-AR", "exact-parallel"]}
    ar_line, cmlm_line = translation_rules.latency_speedup(_results(), {}, rule)
    # 100/50 at batch 1, 400/800 at 64.
    assert "speculative_cmlm8 2.00× ± 0.14 and 0.50× ± 0.04" in ar_line
    assert "Faster at batch 1 but not at batch 64: speculative_cmlm8" in ar_line
    assert "mask_predict_k1_lb1 10.00× ± 0.71 and 2.00× ± 0.14" in cmlm_line
    assert "Faster at batch 1 but not at batch 64: mask_predict_k10_lb1" in cmlm_line
    assert cmlm_line.endswith("Still faster at batch 64 (by more than 2 sem): mask_predict_k1_lb1.")


def test_a_speed_up_within_2_sem_of_1_is_not_called_faster():
    results = _results()
    metrics = results["variants"][1]["metrics"]  # cmlm: K=1 at batch 64, 400 / 360 = 1.11.
    metrics["latency_batch/mask_predict_k1_lb1"] = metric(360.0, example_sem=18.0)
    rule = {"against": "ar_cache", "families": ["non-AR", "exact-parallel"]}
    cmlm_line = translation_rules.latency_speedup(results, {}, rule)[1]
    assert "mask_predict_k1_lb1 10.00× ± 0.71 and 1.11× ± 0.08" in cmlm_line
    assert cmlm_line.endswith("None is faster at batch 64 by more than 2 sem.")


def test_the_quality_latency_plot_prefers_the_measured_latency():
    results = _results()
    points = speed_figures.quality_latency_points(results["variants"], [], results)
    assert sorted(points) == [("bible/en-es", 1, None), ("bible/en-es", 64, None)]
    assert ("cmlm", "mask_predict_k1_lb1", 200.0, 2.0) in points["bible/en-es", 64, None]


def test_the_quality_table_names_the_large_batch_in_its_latency_header():
    results = _results()
    results["metrics_info"] = [
        spec.to_json() for spec in (*translation.METRIC_SPECS, *latency.METRICS)
    ]
    headers, rows = tables.quality_table(results)
    assert headers[3:] == ["BLEU", "latency, batch 1 (ms)", "latency, batch 64 (ms)"]
    speculative = next(row for row in rows if row[1] == "speculative_cmlm8")
    assert speculative[-2:] == ["50 ± 2.5†", "800 ± 40†"]  # ± the timed calls' spread.
