"""evaluation/report/merge.py: a later eval keeps what it did not recompute, replaces what it
did, and says which."""

import copy

from report_fixtures import metric

from evaluation.report.merge import merge


def _record(name: str, steps: list[int], **metrics: float) -> dict:
    return {
        "name": name,
        "steps": steps,
        "metrics": {key: metric(value) for key, value in metrics.items()},
        "samples": {},
        "signatures": {},
    }


def _results(created: str, variants: list[dict], speed: dict | None = None) -> dict:
    names = dict.fromkeys(key for record in variants for key in record["metrics"])
    info = [{"name": key} for key in names]
    return {
        "created": created,
        "variants": variants,
        "speed": speed or {},
        "metrics_info": info,
        "tables_info": [{"name": table} for table in (speed or {}) if table == "sampling"],
        "decoders": {},
        "families": {},
    }


def test_nothing_before_means_the_new_results_as_they_are():
    new = _results("t1", [_record("causal", [40], loss=1.0)])
    assert merge(None, new) == (new, [])


def test_metrics_variants_and_timings_not_recomputed_are_kept_and_named():
    before = _results(
        "t0",
        [_record("causal", [40], loss=1.0, leakage=0.0), _record("full", [40], loss=2.0)],
        speed={"sampling": [{"decoder": "ar_cache"}]},
    )
    after = _results("t1", [_record("causal", [40], leakage=0.5)])
    original = copy.deepcopy(after)
    merged, notes = merge(before, after)
    causal, full = merged["variants"]
    assert causal["metrics"]["leakage"]["mean"] == 0.5  # Recomputed: the new value wins.
    assert causal["metrics"]["loss"]["mean"] == 1.0 and causal["carried"] == {
        "loss": "t0, step [40]"
    }
    assert full["name"] == "full" and full["metrics"]["loss"]["mean"] == 2.0
    assert merged["speed"] == before["speed"]
    assert [m["name"] for m in merged["metrics_info"]] == ["leakage", "loss"]
    assert notes == [
        "causal: kept loss from t0.",
        "full: not evaluated this time; kept from t0.",
        "speed: not timed this time; the timed tables are kept from t0.",
    ]
    assert after == original  # The inputs are left alone.


def test_a_metric_kept_from_another_checkpoint_says_which_step():
    before = _results("t0", [_record("causal", [20], loss=1.0)])
    after = _results("t1", [_record("causal", [40], leakage=0.0)])
    _, notes = merge(before, after)
    assert notes == ["causal: kept loss from t0 at step [20] (this eval: step [40])."]
    twice, _ = merge(merge(before, after)[0], _results("t2", [_record("causal", [40])]))
    assert twice["variants"][0]["carried"]["loss"] == "t0, step [20]"  # Where it was measured.
