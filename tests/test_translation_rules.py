"""The fair fight's verdicts beyond the gap (evaluation/report/translation_rules.py): the best
few-pass student against AR, passes by sampler, and MDLM against CMLM at equal passes."""

from report_fixtures import metric

from evaluation import decoders, runner
from evaluation.report import findings, translation_rules
from tests.test_latency import _record, _results

DIFFUSION = ("diffusion_t1_lb1", "diffusion_conf_t1_lb1", "diffusion_conf_t10_lb1")


def _with_students() -> dict:
    """_results()'s AR and CMLM variants, a distilled CMLM with K = 1 and 10 rows, a CTC
    student and a distilled MDLM, each decoder described by its registered params."""
    results = _results()
    students = [
        _record(
            "cmlm_distilled",
            {"mask_predict_k1_lb1": 7.0, "mask_predict_k10_lb1": 9.0},
            distilled=True,
        ),
        _record("ctc_distilled", {"ctc": 8.5}, distilled=True) | {"objective": "ctc"},
        _record("mdlm_distilled", dict(zip(DIFFUSION, (3.0, 8.0, 9.4), strict=True)),
                distilled=True) | {"objective": "diffusion", "model_kind": "diffusion"},
    ]  # fmt: skip
    results["variants"] = results["variants"][:2] + students
    used = {d for r in results["variants"] for k in r["metrics"] for d in [k.partition("/")[2]]}
    results["decoders"] = decoders.describe(decoders.lookup(sorted(used - {""})))["decoders"]
    return results


def test_passes_count_k_t_and_one_for_ctc_but_not_ar_or_drafts():
    def passes(decoder):
        return translation_rules.passes(decoders.DECODERS[decoder].params.to_json())

    assert [passes(d) for d in ("mask_predict_k4_lb3", "diffusion_conf_t10_lb1", "ctc")] == [
        4, 10, 1
    ]  # fmt: skip
    assert passes("ar_cache") is None and passes("beam4") is None
    assert passes("speculative_cmlm8") is None


def test_the_best_student_of_at_most_4_passes_is_read_against_ar_greedy():
    rule = {"against": "ar_cache", "max_passes": 4}
    (line,) = translation_rules.fastest_student(_with_students(), {}, rule)
    # CTC's 8.5 in one pass beats CMLM's 7.0 at K=1 and MDLM's 8.0 at T=1; K=10 and T=10 have
    # too many passes, however good.
    assert line.startswith(
        "The best student with at most 4 passes (of 6 such rows, each finding its own length): "
        "ctc_distilled (ctc, "
    )
    assert line.endswith("a gap of +3.5 ± 0.6 (0 seeds; ar 0 seeds).")
    # A row given the reference's length is no student's headline, however good.
    results = _with_students()
    results["variants"][1]["metrics"]["bleu/mask_predict_k1"] = metric(11.0, example_sem=0.4)
    results["decoders"]["mask_predict_k1"] = decoders.DECODERS["mask_predict_k1"].to_json()
    (line,) = translation_rules.fastest_student(results, {}, rule)
    assert "ctc_distilled" in line and "of 6 such rows" in line
    assert translation_rules.fastest_student(_with_students(), {}, {**rule, "max_passes": 0}) == []


def test_mdlm_meets_cmlm_of_the_same_data_at_the_same_passes_sampler_by_sampler():
    results = _with_students()
    # A GLAT reading the copied source, listed first, is another model: not MDLM's match.
    glat = _record("glat_distilled", {"mask_predict_k1_lb1": 1.0}, distilled=True)
    glat["config"]["model"] = {"source_copy_id": 3}
    # MDLM's one more position (it reads each row whole) is no other model.
    results["variants"][-1]["config"]["model"] = {"max_len": 193}
    results["variants"].insert(0, glat | {"objective": "glancing"})
    (line,) = translation_rules.loss_and_sampler(results, {}, {})
    label = {d: decoders.DECODERS[d].label for d in (*DIFFUSION, "mask_predict_k1_lb1")}
    label["k10"] = decoders.DECODERS["mask_predict_k10_lb1"].label
    assert line.startswith(
        "mdlm_distilled (the diffusion loss) against cmlm_distilled (masked), same model, data "
        "and passes: "
    )
    # Paired by passes: T=1 rows against K=1, T=10 against K=10; raw cmlm is other data.
    assert f"{label['diffusion_t1_lb1']} -4.0 ± 0.6 over {label['mask_predict_k1_lb1']}" in line
    assert f"{label['diffusion_conf_t1_lb1']} +1.0 ± 0.6, within noise over " in line
    assert f"{label['diffusion_conf_t10_lb1']} +0.4 ± 0.6, within noise over {label['k10']}" in line


def test_the_iterations_verdict_groups_diffusion_rows_by_sampler():
    lines = translation_rules.iterations(_with_students(), {}, {})
    (mdlm,) = [line for line in lines if line.startswith("mdlm_distilled")]
    assert "diffusion (confidence), length beam 1: 8.0, 9.4 at K = 1, 10 (K=1→10: +1.4" in mdlm
    assert "diffusion (ancestral)" not in mdlm  # One row only: no gain to state.


def test_the_best_student_leads_the_findings():
    results = _with_students()
    results["metrics_info"] = runner.descriptions(["quality"], [])["metrics_info"]
    rows = findings.findings(results)
    assert rows[0]["claim"].startswith("The best student with at most 4 passes")
    assert sum(r["claim"].startswith("The best student") for r in rows) == 1
