"""evaluation/report/schema.py: descriptions refuse what the renderer could not show, and are
stored as plain JSON."""

import json

import pytest

from evaluation import runner
from evaluation.report.schema import QUALITY, ColumnSpec, MetricSpec, TableSpec


def test_a_metric_spec_refuses_an_unknown_format_and_a_quality_column_not_per_decoder():
    with pytest.raises(ValueError, match="format must be one of"):
        MetricSpec("x", "x", format="permille")
    with pytest.raises(ValueError, match="the quality table is per decoder"):
        MetricSpec("x", "x", table=QUALITY)


def test_descriptions_are_plain_json_and_unique_per_metric():
    spec = MetricSpec("x", "x", verdicts=({"rule": "state", "text": "{value}"},))
    table = TableSpec("t", "T", (ColumnSpec("a", "A", "{:.1f}", 1e3),))
    for described in (spec.to_json(), table.to_json()):
        assert json.loads(json.dumps(described)) == described
        assert not any(isinstance(value, tuple) for value in described.values())
    info = runner.descriptions(list(runner.EVALUATORS), [])
    names = [spec["name"] for spec in info["metrics_info"]]
    assert len(names) == len(set(names)) and "perturbation_leakage" in names
    assert [table["name"] for table in info["tables_info"]] == ["sampling", "training"]
