"""The report's learning-curve figure: each variant's held-out score against training time (or
steps, when a run did not log its time), from the picture `learning_curve` that
evaluation/learning_curve.py stores in a variant's record.

A curve is {decoder (its id), decoder_label, metric ("bleu", "exact_match" or
"likelihood_bits"), num_examples,
steps, seconds, flops, values, sems, averaged, averaged_steps} for the first seed. A figure is
returned, not PNG bytes: figures.py owns the style and the encoding.
"""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

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


def learning_curves(records: list[dict]) -> Figure:
    """One panel per score (BLEU on translation, else exact match): a line per variant with a
    band of ± its sem over examples, and a star at the last step for the averaged checkpoints."""
    found = curves_of(records)
    metrics = list(dict.fromkeys(curve["metric"] for _, curve in found))
    fig = Figure(figsize=(5.8 * len(metrics), 4.8))
    axes = fig.subplots(1, len(metrics), squeeze=False).ravel()
    for ax, metric in zip(axes, metrics, strict=True):
        label, scale = AXES.get(metric, (metric, 1.0))
        # Against training time when every run logged it (variants' steps cost differently).
        timed = all(
            None not in (curve.get("seconds") or [None])
            for _, curve in found
            if curve["metric"] == metric
        )
        starred = False  # One legend entry for the stars: the colour says whose.
        for index, (variant, curve) in enumerate(found):
            if curve["metric"] != metric:
                continue
            color = f"C{index % 10}"
            steps_N = np.asarray(curve["steps"], float)
            if timed:
                steps_N = np.asarray(curve["seconds"], float) / 60.0
            values_N = scale * np.asarray(curve["values"], float)
            sems_N = scale * np.asarray([sem or 0.0 for sem in curve["sems"]], float)
            decoder = curve.get("decoder_label", curve["decoder"])
            ax.plot(steps_N, values_N, "o-", color=color, lw=1.2, ms=3,
                    label=f"{variant}: {decoder}")  # fmt: skip
            ax.fill_between(steps_N, values_N - sems_N, values_N + sems_N, color=color,
                            alpha=0.15, lw=0)  # fmt: skip
            star = "_nolegend_" if starred else "★: the last checkpoints averaged"
            ax.plot(steps_N[-1], scale * curve["averaged"], "*", color=color, ms=11, label=star)
            starred = True
        ax.set_xlabel("training minutes (this machine)" if timed else "training step")
        if not timed:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0.0)
        ax.set_ylabel(label)
        x_name = "training time" if timed else "training steps"
        ax.set_title(f"Held-out {label.split(' (')[0]} against {x_name}")
        # Below the axes, so that no curve hides behind it.
        ax.legend(frameon=False, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.tight_layout()
    return fig
