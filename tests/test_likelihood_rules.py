"""evaluation/report/likelihood_rules.py: the verdict on BD3-LM's ordering of bits per token,
each reversed pair judged by its paired difference over the same rows, else by independent
sems; results written before the rows were kept still render."""

import math

import numpy as np
from report_fixtures import make_results, metric

from evaluation import likelihood, report
from evaluation.report import likelihood_rules, rendering
from evaluation.report.records import difference
from evaluation.report.verdicts import verdicts
from evaluation.stats import ratio_mean_sem
from model.masks import mask_kind
from objectives import objective_of


def _variant(name, kind, objective, bits, block_size=1, given_length=None, task="copy"):
    metrics = {"likelihood_bits": metric(bits, example_sem=0.01)}
    if given_length is not None:
        metrics["likelihood_given_length"] = metric(float(given_length))
    return {
        "name": name,
        "task": task,
        "mask_kind": kind,
        "objective": objective,
        "model_kind": objective_of(objective).model_kind,
        "exact_mask": mask_kind(kind).exact_cache,
        "block_size": block_size if mask_kind(kind).uses_block_size else None,
        "config": {"model": {"block_size": block_size}},
        "metrics": metrics,
    }


def _scored(record: dict, seeds_Nx2: list[np.ndarray]) -> dict:
    """`record` with bits per token and each row's [nats, tokens] from `seeds_Nx2`, as the
    runner writes them: mean over seeds, each seed's sem over rows."""
    per_seed = [ratio_mean_sem(rows[:, 0] / math.log(2), rows[:, 1]) for rows in seeds_Nx2]
    means = [m for m, _ in per_seed]
    found = metric(float(np.mean(means)), per_seed=means)
    found["per_seed_sem"] = [s for _, s in per_seed]
    if len(means) > 1:
        found["sem"] = float(np.std(means, ddof=1) / math.sqrt(len(means)))
    record["metrics"]["likelihood_bits"] = found
    record["sentences"] = {"likelihood_bits": [rows.tolist() for rows in seeds_Nx2]}
    return record


def _rows(seed: int, n: int = 64, above: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """[nats, tokens] of two variants on the same n rows, whose per-token difficulty varies
    widely from row to row for both; the second `above` nats per token above the first."""
    rng = np.random.default_rng(seed)
    tokens_N = rng.integers(8, 65, n).astype(np.float64)
    hardness_N = 1.0 + rng.random(n)
    first_N = tokens_N * (hardness_N + 0.005 * rng.standard_normal(n))
    second_N = tokens_N * (hardness_N + above + 0.005 * rng.standard_normal(n))
    return np.stack([first_N, tokens_N], 1), np.stack([second_N, tokens_N], 1)


def _results(*variants) -> dict:
    specs = [spec.to_json() for spec in likelihood.METRICS]
    return {"variants": list(variants), "metrics_info": specs}


def _ordering(bd3_4: float, bd3_16: float, given_length: bool = False) -> list[str]:
    return verdicts(
        _results(
            _variant("ar", "causal", "teacher_forcing", 1.0, given_length=False),
            _variant("bd3_16", "block_causal", "diffusion", bd3_16, 16, given_length),
            _variant("bd3_4", "block_causal", "diffusion", bd3_4, 4, given_length),
            _variant("mdlm", "prefix_full", "diffusion", 1.5, given_length=given_length),
            _variant("leaky", "full", "teacher_forcing", 0.1),  # Not in the ordering.
            _variant("cmlm", "prefix_full", "masked", 0.2),
        )
    )


def test_the_ordering_verdict_lists_variants_by_block_size_and_says_whether_it_holds():
    (line,) = _ordering(1.2, 1.3)
    assert line.startswith("On copy: ar (AR) 1, bd3_4 (block 4) 1.2, bd3_16 (block 16) 1.3, ")
    assert "mdlm (MDLM) 1.5 bits per token" in line and line.endswith(") holds.")
    assert "leaky" not in line and "cmlm" not in line
    # Without each row's statistics (results written before them): independent sems.
    within = _ordering(1.3, 1.29)[0]
    assert within.endswith(
        "holds within noise (bd3_4 is above bd3_16 by +0.010 ± 0.014, within noise)."
    )
    (broken,) = _ordering(1.4, 1.2)
    assert "does not hold (bd3_4 is above bd3_16 by +0.200 ± 0.014)" in broken
    (given,) = _ordering(1.2, 1.3, given_length=True)
    assert given.endswith("bd3_4, bd3_16, mdlm given the length, not AR's quantity.")


def test_no_ordering_verdict_without_two_places_on_a_task():
    lone = _results(
        _variant("ar", "causal", "teacher_forcing", 1.0),
        _variant("mdlm", "full", "diffusion", 1.5, task="other"),
    )
    assert verdicts(lone) == []


def _reversed_pair(mdlm_rows: list[np.ndarray], block_rows: list[np.ndarray]) -> list[dict]:
    """An MDLM and a block-4 model scored on `mdlm_rows` and `block_rows` (per seed)."""
    mdlm = _scored(_variant("mdlm", "full", "diffusion", 0.0), mdlm_rows)
    block = _scored(_variant("bd3_4", "block_causal", "diffusion", 0.0, 4), block_rows)
    return [mdlm, block]


def test_a_reversed_pair_on_the_same_rows_is_judged_by_its_paired_difference():
    """Rows of varying difficulty move both variants' bits alike: a gap of 0.03 bits that the
    independent sems call noise is well over 2 of its paired sems."""
    pairs = [_rows(seed) for seed in range(2)]  # Block 4 above MDLM: a reversed pair.
    mdlm, block = _reversed_pair([first for first, _ in pairs], [second for _, second in pairs])
    paired = likelihood_rules.bits_difference(block, mdlm)
    independent = difference(
        block["metrics"]["likelihood_bits"], mdlm["metrics"]["likelihood_bits"]
    )
    assert math.isclose(paired[0], independent[0], rel_tol=1e-9) and paired[0] > 0
    assert 0 < paired[1] < 0.2 * independent[1] and paired[0] <= 2 * independent[1]
    (line,) = verdicts(_results(block, mdlm))
    assert f"does not hold (bd3_4 is above mdlm by {paired[0]:+.3f} ± {paired[1]:.3f})" in line
    # The same rows without their statistics: the independent bound, within noise.
    del block["sentences"]
    assert likelihood_rules.bits_difference(block, mdlm) == independent
    assert "holds within noise (bd3_4 is above mdlm by" in verdicts(_results(block, mdlm))[0]


def test_other_seeds_or_rows_fall_back_to_independent_sems():
    pairs = [_rows(seed) for seed in range(2)]
    for mdlm_rows, block_rows in (
        ([first for first, _ in pairs], [pairs[0][1]]),  # 2 seeds against 1.
        ([pairs[0][0][:-1]], [pairs[0][1]]),  # 63 rows against 64.
    ):
        mdlm, block = _reversed_pair(mdlm_rows, block_rows)
        independent = difference(
            block["metrics"]["likelihood_bits"], mdlm["metrics"]["likelihood_bits"]
        )
        assert likelihood_rules.bits_difference(block, mdlm) == independent


def test_results_without_rows_still_render_the_ordering(monkeypatch):
    """results.json written before the likelihood kept its rows."""
    monkeypatch.setattr(rendering, "figures", lambda results: {})  # Text only: faster.
    results = make_results()
    causal = results["variants"][0]
    causal["metrics"]["likelihood_bits"] = metric(1.0, example_sem=0.01)
    mdlm = _variant("mdlm", "full", "diffusion", 1.5)
    results["variants"].append({**results["variants"][1], **mdlm})
    assert all("likelihood_bits" not in r.get("sentences", {}) for r in results["variants"])
    markdown = report.render(results)["report.md"]
    assert "causal (AR) 1, mdlm (MDLM) 1.5 bits per token; BD3-LM's ordering" in markdown


def _curve(record: dict, values, seconds, sems=None, flops=None) -> dict:
    """`record` with a likelihood learning curve at 3 checkpoints."""
    curve = {
        "metric": "likelihood_bits",
        "steps": [500, 1000, 1500],
        "seconds": seconds,
        "flops": flops or [None] * 3,
        "values": list(values),
        "sems": sems or [0.01, 0.01, 0.01],
    }
    return record | {"pictures": {"learning_curve": curve}}


def test_the_relative_gap_to_ar_is_read_along_compute():
    ar = _curve(_variant("ar", "causal", "teacher_forcing", 1.8), (3.0, 2.0, 1.8), [60, 120, 180])
    # MDLM's steps cost half AR's: its curve is read at AR's times, between its checkpoints.
    mdlm = _curve(_variant("mdlm", "full", "diffusion", 2.6), (6.0, 3.6, 2.6), [30, 60, 90])
    (line,) = likelihood_rules.gap_with_compute({"variants": [ar, mdlm]}, {}, {})
    # At 1 minute: 3.6 against 3.0 (+20%); at 1.5 minutes: 2.6 against 2.5 (+4%).
    assert line == (
        "mdlm: bits per token +20% ± 1 against AR at 1.0 training minutes, +4% ± 1 at 1.5 "
        "training minutes: the relative gap narrows (-16 ± 1 points)."
    )
    # Without logged times the curves meet at the same steps; wide sems make it noise.
    flat = [_curve(r, r["pictures"]["learning_curve"]["values"], [None] * 3, [0.5] * 3)
            for r in (ar, mdlm)]  # fmt: skip
    (line,) = likelihood_rules.gap_with_compute({"variants": flat}, {}, {})
    assert "at step 500" in line and "does not change beyond noise" in line
    assert likelihood_rules.gap_with_compute({"variants": [mdlm]}, {}, {}) == []  # No AR.
    # With FLOPs logged by every run, they are the axis (the same on any machine).
    counted = [_curve(r, r["pictures"]["learning_curve"]["values"], [1, 2, 3], flops=[1e12, 2e12,
               3e12]) for r in (ar, mdlm)]  # fmt: skip
    (line,) = likelihood_rules.gap_with_compute({"variants": counted}, {}, {})
    assert "at 1.0 TFLOP of training" in line and "at 3.0 TFLOP of training" in line


def test_the_ordering_ranks_the_candidates_at_one_budget_only():
    def at(record, steps, **train):
        config = {"model": record["config"]["model"], "train": train,
                  "eval": {"diffusion": {"ar_variant": "judge"}}}  # fmt: skip
        return record | {"num_steps": steps, "config": config}

    variants = [
        at(_variant("ar", "causal", "teacher_forcing", 1.8), 1500),
        at(_variant("bd3", "block_causal", "diffusion", 2.5, block_size=4), 1500),
        at(_variant("mdlm", "full", "diffusion", 3.0), 1500),
        # A stronger judge, MDLM trained 4x longer, block 4 from MDLM: none is ranked.
        at(_variant("judge", "causal", "teacher_forcing", 1.2), 6000),
        at(_variant("mdlm_long", "full", "diffusion", 2.0), 6000),
        at(_variant("warm", "block_causal", "diffusion", 2.2, block_size=4), 1500,
           init_from="mdlm"),
    ]  # fmt: skip
    results = {"variants": variants}
    assert likelihood_rules.equal_budgets(results) == {"ar", "bd3", "mdlm"}
    # Equal CPU budgets give the candidates different steps (a block model's step costs 2x
    # AR's): their logged training compute, not their steps, says which share a budget.
    costs = {"ar": (1500, 16.3), "bd3": (700, 14.6), "mdlm": (1400, 15.5), "judge": (6000, 65.3),
             "mdlm_long": (5600, 62.0), "warm": (700, 14.6)}  # fmt: skip
    by_cost = [r | {"num_steps": costs[r["name"]][0],
                    "train_cost": {"seconds": 60.0, "flops": costs[r["name"]][1] * 1e12}}
               for r in variants]  # fmt: skip
    assert likelihood_rules.equal_budgets({"variants": by_cost}) == {"ar", "bd3", "mdlm"}
    spec = {"name": "likelihood_bits"}
    (line,) = likelihood_rules.likelihood_order(results, spec, {"given_length": "x"})
    assert "ar (AR) 1.8, bd3 (block 4) 2.5, mdlm" in line and "judge" not in line
    assert line.endswith("holds.")


def test_a_variant_trained_beyond_ars_budget_is_read_against_the_ar_model_nearest_its_compute():
    def judged(record):
        return record | {
            "config": record["config"] | {"eval": {"diffusion": {"ar_variant": "judge"}}}
        }

    flops = lambda *tera: [t * 1e12 for t in tera]  # noqa: E731
    ar = _curve(judged(_variant("ar", "causal", "teacher_forcing", 1.8)), (3.0, 2.0, 1.8),
                [1, 2, 3], flops=flops(1, 2, 3))  # fmt: skip
    judge = _curve(_variant("judge", "causal", "teacher_forcing", 1.5), (2.0, 1.6, 1.5),
                   [4, 8, 12], flops=flops(4, 8, 11))  # fmt: skip
    long = _curve(judged(_variant("mdlm_long", "full", "diffusion", 2.1)), (3.0, 2.4, 2.1),
                  [4, 8, 12], flops=flops(4, 8, 12))  # fmt: skip
    lines = likelihood_rules.gap_with_compute({"variants": [ar, judge, long]}, {}, {})
    # Its curve starts after AR's ends: only the reading at its end, against the judge (2.1 / 1.5).
    assert lines == [
        "mdlm_long: bits per token +40% ± 1 against judge (a next-token model trained to about "
        "its compute) at 12.0 TFLOP of training against 11.0 TFLOP of training."
    ]
    # No next-token model near its compute: nothing beyond AR's budget is claimed.
    far = _curve(judge, (2.0, 1.6, 1.5), [4, 8, 12], flops=flops(1, 2, 4))
    assert likelihood_rules.gap_with_compute({"variants": [ar, far, long]}, {}, {}) == []
