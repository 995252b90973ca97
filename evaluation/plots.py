"""The report's figures (matplotlib, Agg): each function returns PNG bytes.

Zeros are drawn as white ("bad" in the colour map) rather than as the lowest colour, so an entry
that is exactly 0.0 (a masked attention weight, a zero gradient) reads differently from a small one.
"""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

COLORS = {"causal": "#1f77b4", "full": "#d62728", "prefix": "#2ca02c", "prefix_full": "#9467bd"}
plt.rcParams.update(
    {
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "figure.dpi": 110,
    }
)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def color_of(record: dict, index: int) -> str:
    """One colour per mask kind; NAR and extra variants cycle through the default palette."""
    if record.get("objective") == "masked":
        return "#9467bd"
    return COLORS.get(record.get("mask_kind"), f"C{index % 10}")


def _token_ticks(ax, labels: list[str]) -> None:
    ticks = np.arange(len(labels))
    step = max(1, len(labels) // 24)
    ax.set_xticks(ticks[::step], [labels[i] for i in ticks[::step]], fontsize=7)
    ax.set_yticks(ticks[::step], [labels[i] for i in ticks[::step]], fontsize=7)
    ax.set_xlabel("input position s (key)")
    ax.set_ylabel("output position t")


def _grid(count: int, per_row: int) -> tuple[int, int]:
    return -(-count // per_row), min(count, per_row)


def dependency_maps(names: list[str], pictures: list[dict], shares: list[float]) -> bytes:
    """||∂ logits_t / ∂ embedding_s|| maps, three per row, log colour scale, zeros white."""
    rows, cols = _grid(len(names), 3)
    fig, axes = plt.subplots(rows, cols, figsize=(3.9 * cols, 3.6 * rows), squeeze=False)
    cmap = plt.get_cmap("magma_r").with_extremes(bad="white")
    for ax, name, picture, share in zip(axes.flat, names, pictures, shares, strict=False):
        map_TxT = picture["dependency_map"]
        positive = map_TxT[map_TxT > 0]
        low = np.percentile(positive, 1) if positive.size else 1e-6
        image = ax.imshow(
            np.ma.masked_equal(map_TxT, 0.0),
            cmap=cmap,
            norm=matplotlib.colors.LogNorm(vmin=max(low, 1e-8), vmax=max(map_TxT.max(), 1e-7)),
        )
        ax.plot([-0.5, len(map_TxT) - 0.5], [-0.5, len(map_TxT) - 0.5], color="#888", lw=0.6)
        ax.set_title(f"{name}: future share {100 * share:.2f}%")
        _token_ticks(ax, picture["labels"])
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    fig.suptitle("Dependency maps ||∂ logits_t / ∂ embedding_s|| (white = exactly 0)")
    fig.tight_layout()
    return _png(fig)


def attention_maps(names: list[str], pictures: list[dict]) -> bytes:
    """Attention probabilities per layer (mean over heads) of one example; 3 variants per row."""
    num_layers = max(p["attention_LxTxT"].shape[0] for p in pictures)
    rows, per_row = _grid(len(names), 3)
    cols = per_row * num_layers
    fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols, 3.1 * rows), squeeze=False)
    cmap = plt.get_cmap("Blues").with_extremes(bad="#ececec")
    for ax in axes.flat:
        ax.set_visible(False)
    for i, (name, picture) in enumerate(zip(names, pictures, strict=True)):
        for layer in range(picture["attention_LxTxT"].shape[0]):
            ax = axes[i // per_row, (i % per_row) * num_layers + layer]
            ax.set_visible(True)
            probs_TxT = picture["attention_LxTxT"][layer]
            ax.imshow(np.ma.masked_equal(probs_TxT, 0.0), cmap=cmap, vmin=0.0, vmax=1.0)
            ax.set_title(f"{name} · layer {layer}", fontsize=9)
            _token_ticks(ax, picture["labels"])
            if layer:
                ax.set_ylabel("")
    fig.suptitle("Attention weights, mean over heads (grey = masked: exactly 0)")
    fig.tight_layout()
    return _png(fig)


def loss_bars(records: list[dict]) -> bytes:
    """Teacher-forced vs honest held-out loss per variant (± sem), with the random floor."""
    shown = [r for r in records if "loss_honest" in r["metrics"]]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(shown) + 1.5), 3.2))
    x = np.arange(len(shown))
    for offset, key, label, hatch in (
        (-0.2, "loss_teacher_forced", "teacher-forced", ""),
        (0.2, "loss_honest", "honest (prefix only)", "//"),
    ):
        means = [r["metrics"][key]["mean"] for r in shown]
        errors = [_error(r["metrics"][key]) for r in shown]
        colors = [color_of(r, i) for i, r in enumerate(shown)]
        ax.bar(
            x + offset,
            means,
            0.38,
            yerr=errors,
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


def _error(metric: dict) -> float:
    if metric["sem"] is not None:
        return metric["sem"]
    return metric["per_seed_sem"][0] or 0.0


def loss_curves(records: list[dict]) -> bytes:
    """Train (solid) and eval (dashed) loss vs step; one line per seed."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for i, record in enumerate(records):
        for j, curves in enumerate(record["curves"].values()):
            for split, style in (("train", "-"), ("eval", "--")):
                points = np.asarray(curves.get(split) or [], float)
                if points.size:
                    label = f"{record['name']} ({split})" if j == 0 else None
                    ax.plot(
                        *points.T,
                        style,
                        color=color_of(record, i),
                        lw=1.2,
                        label=label,
                        alpha=0.9 if split == "train" else 0.7,
                    )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / token)")
    ax.set_title("Training curves (the objective's own loss; teacher-forced for full is leaky)")
    ax.legend(frameon=False, fontsize=7, ncol=2)
    return _png(fig)


def sampling_speed(rows: list[dict]) -> bytes:
    """Batch-1 decode cost per token and tokens/s vs total length, cache vs no cache (log-log)."""
    fig, (ax_cost, ax_rate) = plt.subplots(1, 2, figsize=(8.6, 3.3))
    for decoder, color in (("cache", "#1f77b4"), ("no cache", "#d62728")):
        points = sorted(
            (r["length"], r["ms_per_token"], r["tokens_per_s"])
            for r in rows
            if r["decoder"] == decoder and r["batch_size"] == 1
        )
        if not points:
            continue
        lengths, cost, rate = map(np.asarray, zip(*points, strict=True))
        ax_cost.plot(lengths, cost, "o-", color=color, label=decoder)
        ax_rate.plot(lengths, rate, "o-", color=color, label=decoder)
    for ax, label in ((ax_cost, "ms per generated token"), (ax_rate, "generated tokens / s")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("total length (prompt + generated)")
        ax.set_ylabel(label)
        ax.legend(frameon=False)
    ax_cost.set_title("Per-token cost, batch 1")
    ax_rate.set_title("Sampling throughput, batch 1")
    fig.tight_layout()
    return _png(fig)


def training_speed(rows: list[dict]) -> bytes:
    """Training tokens/s per objective (teacher forcing vs sequential)."""
    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    names = [r["objective"].replace("_", " ") for r in rows]
    rates = [r["tokens_per_s"] for r in rows]
    bars = ax.barh(names, rates, color=["#1f77b4", "#ff7f0e"][: len(rows)])
    ax.bar_label(bars, [f"{v:,.0f}" for v in rates], padding=3, fontsize=8)
    # Linear from zero: bar lengths are read as ratios, and a log axis shrank the slower bar.
    ax.set_xlim(0, max(rates) * 1.2)
    ax.set_xlabel("training tokens / s")
    ax.set_title(f"Training speed at length {rows[0]['seq_len']}")
    return _png(fig)
