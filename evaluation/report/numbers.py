"""How the report writes a number: by the format its MetricSpec names (report/schema.py), and
the one sem it gives a metric (`sem_of`)."""

import math


def fmt_value(x: float, format: str) -> str:
    """One number: "percent" (a share, one decimal and %), "points" (a 0-100 score, one
    decimal), "number" (3 significant digits)."""
    if x == 0.0:
        return "0.0%" if format == "percent" else "0.0"
    if format == "percent":
        return f"{100.0 * x:.1f}%"
    if format == "points":
        return f"{x:.1f}"
    return f"{x:.3g}"


def sem_of(metric: dict) -> float | None:
    """A metric's sem: over several seeds, the seeds' spread and the examples' combined, as
    sqrt(sem over seeds^2 + rms of the seeds' sems over examples^2) (every seed is scored on
    the same examples, so their sampling error is shared and the seeds' spread cannot show it);
    the seeds' spread alone where a seed has no sem over examples; with one seed, its sem over
    examples; None where there is neither."""
    examples = metric.get("per_seed_sem") or [None]
    if metric.get("sem") is None:
        return examples[0]
    if None in examples:
        return metric["sem"]
    return math.sqrt(metric["sem"] ** 2 + sum(s * s for s in examples) / len(examples))


def fmt(metric: dict | None, format: str = "number") -> str:
    """'mean ± sem' (`sem_of`: seeds and examples combined); with one seed, ± the sem over
    examples, marked †."""
    if metric is None:
        return "—"
    text = fmt_value(metric["mean"], format)
    sem = sem_of(metric)
    if not sem and metric.get("sem") is None:
        return text
    return f"{text} ± {fmt_value(sem, format)}" + ("†" if metric.get("sem") is None else "")
