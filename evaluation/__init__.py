"""Evaluation: leakage, loss, quality and speed metrics, and the comparison report."""
