"""The report's figures of the timed tables (evaluation/speed.py's rows): sampling speed by
length, the speed-up over AR by batch size, quality against latency, and training speed.

Each returns a matplotlib Figure; figures.py owns the style, the order and the PNG encoding. A
row that names a `variant` was timed on that variant's shape (a diffusion decoder's block
size): it is drawn as its own line, and pairs only with that variant's scores.
"""

import matplotlib.lines
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

from evaluation.report.records import decoders_of, label_of
from evaluation.report.speed_rules import speedups_by_batch, timed_label

# A task's quality axis: (metric, label, factor to the axis's unit, lower is better), the first
# whose metric its scored decoders have. Generative NLL only on a task whose every decoder is
# judged without a reference (plain text: there is no continuation to match), and only there.
QUALITY_AXES = (
    ("bleu", "BLEU", 1.0, False),
    ("gen_nll", "generative NLL (nats / token)", 1.0, True),
    ("correct", "correct (%)", 100.0, False),
    ("exact_match", "exact match (%)", 100.0, False),
)
REFERENCE_FREE = "sample_entropy"  # The statistic every reference-free decoder reports.


def _entries(rows: list[dict], results: dict) -> list[tuple[str, str | None]]:
    """(decoder, variant) of the rows, in results' decoder order (then first met)."""
    order = list(results.get("decoders", {}))
    found = list(dict.fromkeys((r["decoder"], r.get("variant")) for r in rows))
    return sorted(found, key=lambda e: order.index(e[0]) if e[0] in order else len(order))


def sampling_speed(rows: list[dict], results: dict) -> Figure:
    """Batch-1 cost per token and tokens/s vs total length, one line per decoder (log-log).

    A decoder's colour is its index in results["decoders"], so it is the same in every report of
    the experiment; one timed on a further variant's blocks is dashed.
    """
    batch1 = [r for r in rows if r["batch_size"] == 1]
    order = list(results.get("decoders", {}))
    fig = Figure(figsize=(8.6, 3.3))
    ax_cost, ax_rate = fig.subplots(1, 2)
    for index, (decoder, variant) in enumerate(_entries(batch1, results)):
        points = sorted(
            (r["length"], r["ms_per_token"], r["tokens_per_s"])
            for r in batch1
            if (r["decoder"], r.get("variant")) == (decoder, variant)
        )
        lengths, cost, rate = map(np.asarray, zip(*points, strict=True))
        color = f"C{(order.index(decoder) if decoder in order else index) % 10}"
        lent = variant and variant != (results.get("speed") or {}).get("variant")
        style = "o--" if lent else "o-"
        label = timed_label(results, decoder, variant)
        ax_cost.plot(lengths, cost, style, color=color, label=label)
        ax_rate.plot(lengths, rate, style, color=color, label=label)
    for ax, label in ((ax_cost, "ms per generated token"), (ax_rate, "generated tokens / s")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("total length (prompt + generated)")
        ax.set_ylabel(label)
        ax.legend(frameon=False, fontsize=7)
    ax_cost.set_title("Per-token cost, batch 1")
    ax_rate.set_title("Sampling throughput, batch 1")
    fig.tight_layout()
    return fig


def batch_speedups(results: dict) -> tuple[dict, dict]:
    """(the "batch_speedup" rule of a timed table, its speedups_by_batch) from the first table
    whose rule finds a decoder timed at two batch sizes; ({}, {}) when none does."""
    speed = results.get("speed") or {}
    for table in results.get("tables_info", []):
        for rule in table["verdicts"]:
            if rule["rule"] == "batch_speedup":
                found = speedups_by_batch(results, speed.get(table["name"], []), rule)
                if found:
                    return rule, found
    return {}, {}


def speedup_by_batch(rule: dict, found: dict, results: dict) -> Figure:
    """Each parallel decoder's speed-up over rule["against"] against the batch size (log-log),
    with the line where the speed-up is gone (1)."""
    fig = Figure(figsize=(5.6, 3.6))
    ax = fig.subplots()
    order = list(results.get("decoders", {}))
    for index, ((decoder, variant), curve) in enumerate(found.items()):
        batches, speedups = map(np.asarray, zip(*curve["speedups"], strict=True))
        prompt_len, new_tokens = curve["tokens"]
        color = f"C{(order.index(decoder) if decoder in order else index) % 10}"
        label = f"{timed_label(results, decoder, variant)} ({prompt_len} + {new_tokens} tokens)"
        ax.plot(batches, speedups, "o-", color=color, label=label)
    against = timed_label(results, rule["against"])
    ax.axhline(1.0, color="#888", lw=1, ls="--", label=f"{against} (no speed-up)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    batches = sorted({batch for curve in found.values() for batch, _ in curve["speedups"]})
    ax.set_xticks(batches, [str(batch) for batch in batches])
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel("batch size")
    ax.set_ylabel(f"speed-up over {against} (×)")
    ax.set_title(f"Speed-up over {against} by batch size")
    ax.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


def _plain_log_ticks(axis) -> None:
    """Plain numbers (0.8, 2, 30) at a log axis's ticks, minor ones too over short ranges."""
    axis.set_major_formatter(LogFormatter(labelOnlyBase=False))
    axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1.5, 0.5)))


def training_speed(rows: list[dict]) -> Figure:
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
    return fig


def _task(record: dict) -> str:
    """The task itself: variants trained on distilled data of a task share its panel."""
    return record.get("config", {}).get("data", {}).get("task", record["task"])


def quality_axes(records: list[dict]) -> dict[str, tuple]:
    """Task -> its quality axis (a QUALITY_AXES entry), for each task that has one."""
    by_task = {}
    for record in records:
        by_task.setdefault(_task(record), []).extend((record, d) for d in decoders_of(record))
    axes = {}
    for task, scored in by_task.items():
        reference_free = all(f"{REFERENCE_FREE}/{d}" in r["metrics"] for r, d in scored)
        for axis in QUALITY_AXES:
            judged = (axis[0] == "gen_nll") == reference_free
            if judged and any(f"{axis[0]}/{d}" in r["metrics"] for r, d in scored):
                axes[task] = axis
                break
    return axes


def _panel_rows(rows: list[dict]) -> dict[int, list[dict]]:
    """Batch size -> the timed rows of its panels: batch 1 and the largest batch, both at the
    largest batch's length where batch 1 was timed there, else batch 1 at its shortest."""
    if not rows:
        return {}
    large = max(r["batch_size"] for r in rows)
    length = max(r["length"] for r in rows if r["batch_size"] == large)
    batch1 = [r for r in rows if r["batch_size"] == 1]
    if not any(r["length"] == length for r in batch1):
        length_1 = min((r["length"] for r in batch1), default=None)
    else:
        length_1 = length
    panels = {1: [r for r in batch1 if r["length"] == length_1]} if batch1 else {}
    if large > 1:
        panels[large] = [r for r in rows if r["batch_size"] == large and r["length"] == length]
    return panels


def quality_latency_points(records: list[dict], rows: list[dict], results: dict) -> dict:
    """{(task, batch size, length): [(variant, decoder label, latency ms, quality)]}: every
    scored decoder on its task's quality axis (`quality_axes`), at batch 1 and at the largest
    batch. Latency measured on the trained models (the latency evaluator; length None: the
    held-out rows) where a task has it, else the speed rows' (`_panel_rows`), where a row timed
    on a variant's shape (a diffusion decoder's blocks) pairs with that variant alone."""
    axes, points = quality_axes(records), {}
    measured = {_task(r) for r in records if any(k.startswith("latency_1/") for k in r["metrics"])}
    for record in records:
        if _task(record) in measured and _task(record) in axes:
            points_of_measured(record, axes[_task(record)], results, points)
    records = [r for r in records if _task(r) not in measured]
    for batch_size, chosen in _panel_rows(rows).items():
        timed = {(r["decoder"], r.get("variant")): r for r in chosen}
        for record in records:
            if _task(record) not in axes:
                continue
            metric, _, factor, _ = axes[_task(record)]
            for decoder in decoders_of(record):
                row = timed.get((decoder, record["name"])) or timed.get((decoder, None))
                quality = record["metrics"].get(f"{metric}/{decoder}")
                if row and quality:
                    point = (record["name"], label_of(results, decoder), 1e3 * row["latency_s"])
                    key = (_task(record), batch_size, row["length"])
                    points.setdefault(key, []).append((*point, factor * quality["mean"]))
    return points


def points_of_measured(record: dict, axis: tuple, results: dict, points: dict) -> None:
    """Adds the record's decoders at batch 1 and its large batch, by their measured latency."""
    metric, _, factor, _ = axis
    large = int(record["metrics"].get("latency_batch_size", {}).get("mean", 0))
    for decoder in decoders_of(record):
        quality = record["metrics"].get(f"{metric}/{decoder}")
        for batch_size, key in ((1, "latency_1"), (large, "latency_batch")):
            timed = record["metrics"].get(f"{key}/{decoder}")
            if quality and timed:
                point = (record["name"], label_of(results, decoder), timed["mean"])
                points.setdefault((_task(record), batch_size, None), []).append(
                    (*point, factor * quality["mean"])
                )


def frontier(points: list[tuple], lower_is_better: bool) -> list[int]:
    """Indices of the (variant, decoder, ms, quality) points that no other point beats: none is
    at least as fast and at least as good, and strictly one of the two."""
    sign = -1.0 if lower_is_better else 1.0

    def beats(a: tuple, b: tuple) -> bool:
        faster, better = a[2] <= b[2], sign * a[3] >= sign * b[3]
        return faster and better and (a[2] < b[2] or sign * a[3] > sign * b[3])

    return [i for i, p in enumerate(points) if not any(beats(q, p) for q in points)]


def quality_latency(points: dict, axes: dict[str, tuple]) -> Figure:
    """Quality against latency, one panel per (task, batch size): a colour per variant; the
    points of the frontier (`frontier`) are labelled with their decoder and joined, the others
    are left to the tables, where their labels would cover each other. The y axis is the task's
    (`quality_axes`)."""
    keys = sorted(points, key=lambda k: (k[0], k[1], k[2] or 0))
    variants = list(dict.fromkeys(p[0] for key in keys for p in points[key]))
    rows, cols = -(-len(keys) // 2), min(len(keys), 2)
    fig = Figure(figsize=(5.2 * cols, 3.8 * rows))
    axes_grid = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (task, batch_size, length) in zip(axes_grid, keys, strict=False):
        _, label, _, lower_is_better = axes[task]
        panel = points[task, batch_size, length]
        best = frontier(panel, lower_is_better)
        for i, (variant, decoder, ms, quality) in enumerate(panel):
            color = f"C{variants.index(variant) % 10}"
            ax.plot(ms, quality, "o", color=color, alpha=0.8 if i in best else 0.35)
            if i in best:
                ax.annotate(decoder.replace("mask-predict ", ""), (ms, quality), fontsize=6,
                            xytext=(4, -2), textcoords="offset points", color=color)  # fmt: skip
        edge = sorted((panel[i][2], panel[i][3]) for i in best)
        ax.plot(*zip(*edge, strict=True), "-", color="0.6", lw=0.8, zorder=0)
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
        ax.set_xlabel("latency per call (ms)")
        ax.set_ylabel(label)
        better = " (lower is better)" if lower_is_better else ""
        where = "held-out rows, trained models" if length is None else f"{length} tokens"
        ax.set_title(f"{task}, batch {batch_size}, {where}{better}", fontsize=9)
    handles = [
        matplotlib.lines.Line2D([], [], marker="o", ls="", color=f"C{i % 10}", label=v)
        for i, v in enumerate(variants)
    ]
    handles.append(matplotlib.lines.Line2D([], [], ls="-", color="0.6", label="frontier"))
    for ax in axes_grid[len(keys) :]:
        ax.set_visible(False)
    fig.tight_layout()
    # Beside the panels, not over their points; savefig's tight box takes it in.
    fig.legend(handles=handles, frameon=False, fontsize=7, loc="center left",
               bbox_to_anchor=(1.0, 0.5))  # fmt: skip
    return fig
