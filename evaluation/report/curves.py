"""The report's learning-curve figure: each variant's held-out score against training time (or
steps, when a run did not log its time) and against training FLOPs (where every run logged
them), from the picture `learning_curve` that
evaluation/learning_curve.py stores in a variant's record.

A curve is {decoder (its id), decoder_label, metric ("bleu", "exact_match" or
"likelihood_bits"), num_examples,
steps, seconds, flops, values, sems, averaged, averaged_steps} for the first seed. A figure is
returned, not PNG bytes: figures.py owns the style and the encoding.
"""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

# The score's axis label, and the factor that turns its stored value into that unit.
AXES = {
    "bleu": ("BLEU", 1.0),
    "exact_match": ("exact match (%)", 100.0),
    "likelihood_bits": ("bits per token (lower is better)", 1.0),
}


def curves_of(records: list[dict]) -> list[tuple[str, dict]]:
    """(variant, curve) of each record whose pictures hold a learning curve, in record order."""
    return [
        (r["name"], r["pictures"]["learning_curve"])
        for r in records
        if (r.get("pictures") or {}).get("learning_curve")
    ]


# A panel's x axis: (curve key, axis label, title words, scale to the axis unit).
X_AXES = {
    "seconds": ("training minutes (this machine)", "training time", 1 / 60),
    "flops": ("training TFLOP (log scale)", "training compute", 1e-12),
    "steps": ("training step", "training steps", 1.0),
}


def _logged(found: list[tuple[str, dict]], metric: str, key: str) -> bool:
    """Whether every curve of `metric` logged `key` at every checkpoint."""
    return all(None not in (c.get(key) or [None]) for _, c in found if c["metric"] == metric)


def _panels(found: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    """(metric, x key) of each panel: per score, against training time (steps where a run did
    not log its time; the variants' steps cost differently), and against FLOPs where every run
    logged them (the same on any machine)."""
    panels = []
    for metric in dict.fromkeys(curve["metric"] for _, curve in found):
        panels.append((metric, "seconds" if _logged(found, metric, "seconds") else "steps"))
        if _logged(found, metric, "flops"):
            panels.append((metric, "flops"))
    return panels


def learning_curves(records: list[dict]) -> Figure:
    """One panel per score (BLEU on translation, bits per token on plain text, else exact
    match) and compute axis (`_panels`): a line per variant with a band of ± its sem over
    examples, and a star at the last step for the averaged checkpoints."""
    found = curves_of(records)
    panels = _panels(found)
    fig = Figure(figsize=(5.8 * len(panels), 4.8))
    axes = fig.subplots(1, len(panels), squeeze=False).ravel()
    for ax, (metric, x_key) in zip(axes, panels, strict=True):
        _draw(ax, found, metric, x_key)
    fig.tight_layout()
    return fig


def _draw(ax, found: list[tuple[str, dict]], metric: str, x_key: str) -> None:
    """One panel: every curve of `metric` against `x_key`."""
    label, scale = AXES.get(metric, (metric, 1.0))
    x_label, x_name, x_scale = X_AXES[x_key]
    starred = False  # One legend entry for the stars: the colour says whose.
    for index, (variant, curve) in enumerate(found):
        if curve["metric"] != metric:
            continue
        color = f"C{index % 10}"
        x_N = x_scale * np.asarray(curve[x_key], float)
        values_N = scale * np.asarray(curve["values"], float)
        sems_N = scale * np.asarray([sem or 0.0 for sem in curve["sems"]], float)
        decoder = curve.get("decoder_label", curve["decoder"])
        ax.plot(x_N, values_N, "o-", color=color, lw=1.2, ms=3, label=f"{variant}: {decoder}")
        ax.fill_between(x_N, values_N - sems_N, values_N + sems_N, color=color, alpha=0.15, lw=0)
        star = "_nolegend_" if starred else "★: the last checkpoints averaged"
        ax.plot(x_N[-1], scale * curve["averaged"], "*", color=color, ms=11, label=star)
        starred = True
    ax.set_xlabel(x_label)
    if x_key == "steps":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if x_key == "flops":
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(FuncFormatter(_two_and_five))
    ax.set_ylim(bottom=0.0)
    ax.set_ylabel(label)
    ax.set_title(f"Held-out {label.split(' (')[0]} against {x_name}")
    # Below the axes, so that no curve hides behind it.
    ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))


def _two_and_five(x: float, _) -> str:
    """A log axis's minor label: 2 and 5 times a power of ten, the others blank."""
    mantissa = round(x / 10 ** np.floor(np.log10(x)), 6)
    return f"{x:g}" if mantissa in (2.0, 5.0) else ""
