"""The report's figures (matplotlib's object API, Agg; no pyplot state): PNG bytes per file.

Zeros are drawn as white ("bad" in the colour map) rather than as the lowest colour, so an entry
that is exactly 0.0 (a masked attention weight, a zero gradient) reads differently from a small one.
"""

import io

import matplotlib
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from evaluation.report import speed_figures
from evaluation.report.curves import curves_of, learning_curves
from evaluation.report.numbers import sem_of

# (file, title, caption): the report shows the figures in this order, each with its caption.
FIGURES = (
    (
        "dependency_maps.png",
        "Dependency maps",
        "Entry (t, s) is ||∂ logits_t / ∂ embedding_s|| for one held-out example "
        "(log colour scale). "
        "A causal model's map is exactly lower-triangular: everything above the diagonal is 0.0. "
        "A prefix-LM also reads its whole prompt (the square block at the top left).",
    ),
    (
        "attention_maps.png",
        "Attention maps",
        "Attention probabilities per layer, averaged over heads, recomputed from the trained "
        "parameters with the model's own mask. Grey cells are masked (probability exactly 0).",
    ),
    (
        "losses.png",
        "Teacher-forced vs honest loss",
        "Honest loss: position t is computed from the prefix x[:t+1] alone. Equal for an honest "
        "model; the gap is what a full mask leaks.",
    ),
    ("loss_curves.png", "Training curves", "From each run's metrics.jsonl."),
    (
        "learning_curves.png",
        "Held-out score against training compute",
        "Each kept checkpoint of the first seed is scored on the same held-out rows (BLEU of "
        "its decodes on translation; on plain text its bits per token, exact for AR and the "
        "ELBO bound for diffusion; else exact match; the band is ± the sem over examples), "
        "against the "
        "training minutes its run logged to reach it (training steps where a run did not log "
        "them), and, where every run logged them, against its training FLOPs (the same on any "
        "machine), so that variants whose steps cost differently meet on one axis. The star is the "
        "model whose parameters average the last checkpoints. A curve still rising at the end "
        "says that training stopped before it converged.",
    ),
    (
        "sampling_speed.png",
        "Sampling speed",
        "Batch 1, random prompt, random weights; one line per decoder, against the total length "
        "(prompt + generated tokens). The no-cache sampler recomputes the whole prefix at every "
        "step; mask-predict runs K passes over the whole target.",
    ),
    (
        "speedup_by_batch.png",
        "Speed-up over AR by batch size",
        "Each parallel decoder's latency against AR (cache)'s at the same batch size and lengths "
        "(`eval.speed.batch_sizes`): above the dashed line it is faster than AR. Helcl et al. "
        "(2022) found non-AR speed-ups shrink as the batch grows.",
    ),
    (
        "quality_latency.png",
        "Quality vs latency",
        "One panel per task and batch size: each point is a (variant, decoder), its quality on "
        "the held-out prompts against the decoder's latency per call: measured on the trained "
        "models and held-out rows where the latency evaluator ran (the quality table's latency "
        "columns, at batch 1 and its large batch), else the speed table's (random weights of the "
        "timed shape; batch 1 and the largest batch, at the largest batch's length where batch 1 "
        "was timed there). Quality is BLEU on translation, generative NLL "
        "on plain text (lower is better; its samples have no reference), the correct share on "
        "a multi-modal task, else exact match. A diffusion decoder's point needs its variant's "
        "own block size timed (list the variant in `eval.speed.variants`); decoders the speed "
        "table does not time (those needing a second model) are left out of a speed-table "
        "panel.",
    ),
    (
        "training_speed.png",
        "Training speed",
        "One optimizer step per objective, same model "
        "and batch; sequential training runs one forward pass per position.",
    ),
)
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 110,
}
MASK_COLORS = {
    "causal": "#1f77b4",
    "full": "#d62728",
    "prefix": "#2ca02c",
    "prefix_full": "#9467bd",
}


def figures(results: dict) -> dict[str, bytes]:
    """File name -> PNG bytes of every figure the numbers allow, in FIGURES order."""
    records = results["variants"]
    drawn = [r for r in records if (r.get("pictures") or {}).get("dependency_map")]
    with matplotlib.rc_context(STYLE):
        out = {}
        if drawn:
            out["dependency_maps.png"] = dependency_maps(drawn)
            out["attention_maps.png"] = attention_maps(drawn)
        if any("loss_honest" in r["metrics"] for r in records):
            out["losses.png"] = loss_bars(records)
        if any(c.get("train") for r in records for c in r.get("curves", {}).values()):
            out["loss_curves.png"] = loss_curves(records)
        if curves_of(records):
            out["learning_curves.png"] = _png(learning_curves(records))
        out |= _speed_figures(results)
    return out


def _speed_figures(results: dict) -> dict[str, bytes]:
    """The figures of the timed tables (report/speed_figures.py) that the rows allow."""
    records, speed, out = results["variants"], results.get("speed") or {}, {}
    sampling = speed.get("sampling", [])
    if any(row["batch_size"] == 1 for row in sampling):
        out["sampling_speed.png"] = _png(speed_figures.sampling_speed(sampling, results))
    rule, speedups = speed_figures.batch_speedups(results)
    if speedups:
        out["speedup_by_batch.png"] = _png(speed_figures.speedup_by_batch(rule, speedups, results))
    points = speed_figures.quality_latency_points(records, sampling, results)
    if points:
        axes = speed_figures.quality_axes(records)
        out["quality_latency.png"] = _png(speed_figures.quality_latency(points, axes))
    if speed.get("training"):
        out["training_speed.png"] = _png(speed_figures.training_speed(speed["training"]))
    return out


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


# Non-AR variants' colours: the default palette without the mask kinds' (so a CMLM, a GLAT and a
# CTC student of one mask stay apart, and apart from the AR variants).
NON_AR_COLORS = ("#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#ff7f0e")


def color_of(record: dict, index: int) -> str:
    """One colour per mask kind for AR variants; non-AR ones (and kinds without a colour) take
    the `index`-th of their palette, so variants side by side differ."""
    if record.get("non_ar"):
        return NON_AR_COLORS[index % len(NON_AR_COLORS)]
    return MASK_COLORS.get(record.get("mask_kind"), f"C{index % 10}")


def _token_ticks(ax, labels: list[str]) -> None:
    ticks = np.arange(len(labels))
    step = max(1, len(labels) // 24)
    ax.set_xticks(ticks[::step], [labels[i] for i in ticks[::step]], fontsize=7)
    ax.set_yticks(ticks[::step], [labels[i] for i in ticks[::step]], fontsize=7)
    ax.set_xlabel("input position s (key)")
    ax.set_ylabel("output position t")


def _grid(count: int, per_row: int) -> tuple[int, int]:
    return -(-count // per_row), min(count, per_row)


def dependency_maps(records: list[dict]) -> bytes:
    """||∂ logits_t / ∂ embedding_s|| maps, three per row, log colour scale, zeros white."""
    rows, cols = _grid(len(records), 3)
    fig = Figure(figsize=(3.9 * cols, 3.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    cmap = matplotlib.colormaps["magma_r"].with_extremes(bad="white")
    for ax, record in zip(axes.flat, records, strict=False):
        picture = record["pictures"]
        map_TxT = np.asarray(picture["dependency_map"], float)
        positive = map_TxT[map_TxT > 0]
        low = np.percentile(positive, 1) if positive.size else 1e-6
        image = ax.imshow(
            np.ma.masked_equal(map_TxT, 0.0),
            cmap=cmap,
            norm=LogNorm(vmin=max(low, 1e-8), vmax=max(map_TxT.max(), 1e-7)),
        )
        ax.plot([-0.5, len(map_TxT) - 0.5], [-0.5, len(map_TxT) - 0.5], color="#888", lw=0.6)
        share = record["metrics"].get("dependency_future_share")
        title = record["name"]
        if share is not None:
            title += f": future share {100 * share['per_seed'][0]:.2f}%"
        ax.set_title(title)
        _token_ticks(ax, picture["labels"])
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    for ax in axes.flat[len(records) :]:
        ax.set_visible(False)
    fig.suptitle("Dependency maps ||∂ logits_t / ∂ embedding_s|| (white = exactly 0)")
    fig.tight_layout()
    return _png(fig)


def attention_maps(records: list[dict]) -> bytes:
    """Attention probabilities per layer (mean over heads) of one example; at most 6 panels (and
    3 variants) per row, so that deep models keep legible panels."""
    attention = [np.asarray(r["pictures"]["attention"], float) for r in records]
    num_layers = max(a_LxTxT.shape[0] for a_LxTxT in attention)
    rows, per_row = _grid(len(records), max(1, min(3, 6 // num_layers)))
    cols = per_row * num_layers
    fig = Figure(figsize=(2.5 * cols, 3.1 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad="#ececec")
    for ax in axes.flat:
        ax.set_visible(False)
    for i, (record, attention_LxTxT) in enumerate(zip(records, attention, strict=True)):
        for layer, probs_TxT in enumerate(attention_LxTxT):
            ax = axes[i // per_row, (i % per_row) * num_layers + layer]
            ax.set_visible(True)
            ax.imshow(np.ma.masked_equal(probs_TxT, 0.0), cmap=cmap, vmin=0.0, vmax=1.0)
            ax.set_title(f"{record['name']} · layer {layer}", fontsize=9)
            _token_ticks(ax, record["pictures"]["labels"])
            if layer:
                ax.set_ylabel("")
    fig.suptitle("Attention weights, mean over heads (grey = masked: exactly 0)")
    fig.tight_layout()
    return _png(fig)


def _error(metric: dict) -> float:
    return sem_of(metric) or 0.0


def loss_bars(records: list[dict]) -> bytes:
    """Teacher-forced vs honest held-out loss per variant (± sem)."""
    shown = [r for r in records if "loss_honest" in r["metrics"]]
    fig = Figure(figsize=(max(4.0, 1.3 * len(shown) + 1.5), 3.2))
    ax = fig.subplots()
    x = np.arange(len(shown))
    colors = [color_of(r, i) for i, r in enumerate(shown)]
    for offset, key, label, hatch in (
        (-0.2, "loss_teacher_forced", "teacher-forced", ""),
        (0.2, "loss_honest", "honest (prefix only)", "//"),
    ):
        ax.bar(
            x + offset,
            [r["metrics"][key]["mean"] for r in shown],
            0.38,
            yerr=[_error(r["metrics"][key]) for r in shown],
            color=colors,
            hatch=hatch,
            alpha=0.85,
            edgecolor="white",
            capsize=3,
            label=label,
        )
    ax.set_xticks(x, [r["name"] for r in shown], rotation=20, ha="right")
    ax.set_ylabel("held-out loss (nats / token)")
    ax.set_yscale("log")
    ax.legend(frameon=False)
    ax.set_title("Teacher-forced vs honest loss (hatched = honest)")
    return _png(fig)


def loss_curves(records: list[dict]) -> bytes:
    """Train (solid) and eval (dashed) loss vs step; one line per seed."""
    fig = Figure(figsize=(6.4, 3.4))
    ax = fig.subplots()
    for i, record in enumerate(records):
        for j, curves in enumerate(record.get("curves", {}).values()):
            for split, style in (("train", "-"), ("eval", "--")):
                points = np.asarray(curves.get(split) or [], float)
                if points.size:
                    ax.plot(
                        *points.T,
                        style,
                        color=color_of(record, i),
                        lw=1.2,
                        label=f"{record['name']} ({split})" if j == 0 else None,
                        alpha=0.9 if split == "train" else 0.7,
                    )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / token)")
    ax.set_title("Training curves (the objective's own loss; teacher-forced for full is leaky)")
    ax.legend(frameon=False, fontsize=7, ncol=2)
    return _png(fig)
