"""The report's figures (matplotlib's object API, Agg; no pyplot state): PNG bytes per file.

Zeros are drawn as white ("bad" in the colour map) rather than as the lowest colour, so an entry
that is exactly 0.0 (a masked attention weight, a zero gradient) reads differently from a small one.
"""

import io

import matplotlib
import matplotlib.lines
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from evaluation.report.curves import curves_of, learning_curves
from evaluation.report.rules import decoders_of, label_of

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
        "Held-out score against training steps",
        "Each kept checkpoint of the first seed decodes the same held-out prompts (BLEU on "
        "translation, else exact match; the band is ± the sem over examples). The star is the "
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
        "quality_latency.png",
        "Quality vs latency",
        "One panel per task and batch size: each point is a (variant, decoder), its quality on "
        "the held-out prompts (the correct share on a multi-modal task, else exact match) against "
        "the decoder's latency per call in the speed table (random weights of the timed shape; "
        "batch 1 at the shortest length timed, and the large batch). Decoders the speed table "
        "does not time (those needing a second model) are left out.",
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
    records, speed = results["variants"], results.get("speed") or {}
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
        if any(s["batch_size"] == 1 for s in speed.get("sampling", [])):
            out["sampling_speed.png"] = sampling_speed(speed["sampling"], results)
        points = quality_latency_points(records, speed.get("sampling", []), results)
        if points:
            out["quality_latency.png"] = quality_latency(points)
        if speed.get("training"):
            out["training_speed.png"] = training_speed(speed["training"])
    return out


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def color_of(record: dict, index: int) -> str:
    """One colour per mask kind; NAR and extra variants cycle through the default palette."""
    if record.get("non_ar"):
        return "#9467bd"
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
    if metric["sem"] is not None:
        return metric["sem"]
    return (metric.get("per_seed_sem") or [None])[0] or 0.0


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


def sampling_speed(rows: list[dict], results: dict) -> bytes:
    """Batch-1 cost per token and tokens/s vs total length, one line per decoder (log-log).

    A decoder's colour is its index in results["decoders"], so it is the same in every report of
    the experiment.
    """
    decoder_order = list(results.get("decoders", {}))
    batch1 = [r for r in rows if r["batch_size"] == 1]
    names = list(dict.fromkeys(r["decoder"] for r in batch1))
    order = decoder_order + [n for n in names if n not in decoder_order]
    fig = Figure(figsize=(8.6, 3.3))
    ax_cost, ax_rate = fig.subplots(1, 2)
    for name in sorted(names, key=order.index):
        points = sorted(
            (r["length"], r["ms_per_token"], r["tokens_per_s"])
            for r in batch1
            if r["decoder"] == name
        )
        lengths, cost, rate = map(np.asarray, zip(*points, strict=True))
        color = f"C{order.index(name) % 10}"
        ax_cost.plot(lengths, cost, "o-", color=color, label=label_of(results, name))
        ax_rate.plot(lengths, rate, "o-", color=color, label=label_of(results, name))
    for ax, label in ((ax_cost, "ms per generated token"), (ax_rate, "generated tokens / s")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("total length (prompt + generated)")
        ax.set_ylabel(label)
        ax.legend(frameon=False, fontsize=7)
    ax_cost.set_title("Per-token cost, batch 1")
    ax_rate.set_title("Sampling throughput, batch 1")
    fig.tight_layout()
    return _png(fig)


def training_speed(rows: list[dict]) -> bytes:
    """Training tokens/s per objective (teacher forcing vs sequential)."""
    fig = Figure(figsize=(4.2, 2.6))
    ax = fig.subplots()
    names = [r["objective"].replace("_", " ") for r in rows]
    rates = [r["tokens_per_s"] for r in rows]
    bars = ax.barh(names, rates, color=[f"C{i % 10}" for i in range(len(rows))])
    ax.bar_label(bars, [f"{v:,.0f}" for v in rates], padding=3, fontsize=8)
    # Linear from zero: bar lengths are read as ratios, and a log axis shrank the slower bar.
    ax.set_xlim(0, max(rates) * 1.2)
    ax.set_xlabel("training tokens / s")
    ax.set_title(f"Training speed at length {rows[0]['seq_len']}")
    return _png(fig)


def _quality(record: dict, decoder: str) -> float | None:
    metrics = record["metrics"]
    metric = metrics.get(f"correct/{decoder}") or metrics.get(f"exact_match/{decoder}")
    return None if metric is None else 100 * metric["mean"]


def quality_latency_points(records: list[dict], rows: list[dict], results: dict) -> dict:
    """{(task, batch label): [(variant, decoder, latency ms, quality %)]}: every scored decoder
    that the speed rows time, at batch 1 (the shortest length timed) and at the large batch."""
    batch1 = [r for r in rows if r["batch_size"] == 1]
    shortest = min((r["length"] for r in batch1), default=None)
    chosen = [r for r in batch1 if r["length"] == shortest] + [
        r for r in rows if r["batch_size"] > 1
    ]
    latency = {(r["decoder"], r["batch_size"]): 1e3 * r["latency_s"] for r in chosen}
    points = {}
    for record in records:
        # The task itself: variants trained on distilled data of a task share its panel.
        task = record.get("config", {}).get("data", {}).get("task", record["task"])
        for (decoder, batch_size), ms in latency.items():
            quality = _quality(record, decoder) if decoder in decoders_of(record) else None
            if quality is not None:
                key = (task, f"batch {batch_size}")
                label = label_of(results, decoder)
                points.setdefault(key, []).append((record["name"], label, ms, quality))
    return points


def quality_latency(points: dict) -> bytes:
    """Quality against latency, one panel per (task, batch size): a colour per variant, each
    point labelled with its decoder."""
    keys = sorted(points)
    variants = list(dict.fromkeys(p[0] for key in keys for p in points[key]))
    rows, cols = _grid(len(keys), 2)
    fig = Figure(figsize=(5.2 * cols, 3.8 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, key in zip(axes, keys, strict=False):
        for variant, decoder, ms, quality in points[key]:
            color = f"C{variants.index(variant) % 10}"
            ax.plot(ms, quality, "o", color=color, alpha=0.8)
            ax.annotate(decoder.replace("mask-predict ", ""), (ms, quality), fontsize=6,
                        xytext=(4, -2), textcoords="offset points", color=color)  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("latency per call (ms)")
        ax.set_ylabel("quality (%)")
        ax.set_title(f"{key[0]}, {key[1]}")
    handles = [
        matplotlib.lines.Line2D([], [], marker="o", ls="", color=f"C{i % 10}", label=v)
        for i, v in enumerate(variants)
    ]
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    fig.tight_layout()
    # Beside the panels, not over their points; savefig's tight box takes it in.
    fig.legend(handles=handles, frameon=False, fontsize=7, loc="center left",
               bbox_to_anchor=(1.0, 0.5))  # fmt: skip
    return _png(fig)
