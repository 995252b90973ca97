"""The comparison report: a pure renderer of results.json (schema 2) into report.md, index.html
and PNG figures, written atomically. Imports nothing from model, training, data or jax."""

from evaluation.report.rendering import render
from evaluation.report.sections import warnings
from evaluation.report.store import SCHEMA_VERSION, read_results, write
from evaluation.report.verdicts import verdicts

__all__ = ["SCHEMA_VERSION", "read_results", "render", "verdicts", "warnings", "write"]
