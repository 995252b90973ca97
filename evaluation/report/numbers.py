"""How the report writes a number: by the format its MetricSpec names (report/schema.py)."""


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


def fmt(metric: dict | None, format: str = "number") -> str:
    """'mean ± sem' over seeds; with one seed, ± the sem over examples, marked †."""
    if metric is None:
        return "—"
    text = fmt_value(metric["mean"], format)
    if metric["sem"] is not None:
        return f"{text} ± {fmt_value(metric['sem'], format)}"
    example_sem = (metric.get("per_seed_sem") or [None])[0]
    if example_sem:
        return f"{text} ± {fmt_value(example_sem, format)}†"
    return text
