"""The comparison report: a pure renderer of results.json (schema 3) into report.md, index.html
and PNG figures, written atomically. Imports nothing from model, training, data or jax."""

from evaluation.report.rendering import render
from evaluation.report.schema import SCHEMA_VERSION
from evaluation.report.sections import warnings
from evaluation.report.store import read_results, write
from evaluation.report.verdicts import verdict_groups, verdicts

__all__ = [
    "SCHEMA_VERSION",
    "read_results",
    "render",
    "verdict_groups",
    "verdicts",
    "warnings",
    "write",
]
