"""The report's tables, as (headers, rows of cells), built from the metric and table descriptions
that results.json carries (report/schema.py)."""

from evaluation.report.numbers import fmt
from evaluation.report.records import decoders_of, family_of, label_of
from evaluation.report.schema import QUALITY, SUMMARY
from evaluation.report.speed_rules import timed_label

Table = tuple[list[str], list[list[str]]]  # (headers, rows of cells)

SUMMARY_TITLE = (
    "Summary (mean ± sem: the seeds' spread and the examples' combined; † = one seed, sem over "
    "examples)"
)


def _steps(record: dict) -> str:
    """'1200/1200': the step evaluated (each distinct one, over seeds) of the configured steps."""
    steps = ",".join(str(s) for s in dict.fromkeys(record.get("steps", [])))
    return f"{steps or '—'}/{record.get('num_steps', '—')}"


def _columns(results: dict, table: str) -> list[dict]:
    """The visible metric specs of `table` that some variant has, in their declared order."""
    present = {key.split("/", 1)[0] for r in results["variants"] for key in r["metrics"]}
    return [
        spec
        for spec in results.get("metrics_info", [])
        if spec["table"] == table and not spec["hidden"] and spec["name"] in present
    ]


def _cell(metrics: dict, spec: dict, key: str) -> str:
    text = fmt(metrics.get(key), spec["format"])
    paired = metrics.get(spec["paired_with"]) if spec["paired_with"] else None
    return f"{text} ({paired['mean']:.3g})" if paired and text != "—" else text


def _cost_cells(cost: dict) -> list[str]:
    """The training minutes and TFLOPs a variant's seeds logged up to their evaluated step
    (their mean), "—" where unknown (results written before them, or a log that stops short)."""
    seconds, flops = cost.get("seconds"), cost.get("flops")
    return [
        f"{seconds / 60:,.1f}" if seconds is not None else "—",
        f"{flops / 1e12:,.1f}" if flops is not None else "—",
    ]


def summary_table(results: dict) -> Table:
    """One row per variant: what it is, then every summary metric, then its training speed."""
    columns = _columns(results, SUMMARY)
    headers = ["variant", "task", "mask", "objective", "seeds", "params", "step"]
    headers += [spec["label"] for spec in columns]
    headers += ["train tokens/s (logged)", "training (min)", "training (TFLOP)"]
    rows = []
    for r in results["variants"]:
        rows.append(
            [
                r["name"],
                r["task"],
                r.get("mask_label") or r["mask_kind"],
                r["objective"],
                str(len(r["seeds"])),
                f"{r['num_params']:,}" if r.get("num_params") is not None else "—",
                _steps(r),
                *(_cell(r["metrics"], spec, spec["name"]) for spec in columns),
                f"{r['train_tokens_per_s']:,.0f}" if r.get("train_tokens_per_s") else "—",
                *_cost_cells(r.get("train_cost") or {}),
            ]
        )
    return headers, rows


def own_tables(results: dict) -> list[tuple[str, Table]]:
    """(title, table) for each table an evaluator's metrics name besides summary and quality:
    one row per variant that has any of its metrics."""
    titles = [s["table"] for s in results.get("metrics_info", [])]
    out = []
    for title in dict.fromkeys(t for t in titles if t not in (SUMMARY, QUALITY)):
        columns = _columns(results, title)
        rows = [
            [r["name"], *(_cell(r["metrics"], spec, spec["name"]) for spec in columns)]
            for r in results["variants"]
            if any(spec["name"] in r["metrics"] for spec in columns)
        ]
        if rows:
            out.append((title, (["variant", *(s["label"] for s in columns)], rows)))
    return out


def quality_table(results: dict) -> Table:
    """One row per (variant, decoder): AR and non-AR decoders side by side."""
    present = {key for r in results["variants"] for key in r["metrics"] if "/" in key}
    columns = [
        spec
        for spec in results.get("metrics_info", [])
        if spec["table"] == QUALITY
        and not spec["hidden"]
        and any(key.startswith(spec["name"] + "/") for key in present)
    ]
    rows = [
        [
            r["name"],
            label_of(results, decoder),
            family_of(results, decoder),
            *(_cell(r["metrics"], spec, f"{spec['name']}/{decoder}") for spec in columns),
        ]
        for r in results["variants"]
        for decoder in decoders_of(r)
    ]
    return ["variant", "decoder", "family", *(_header(results, spec) for spec in columns)], rows


def _header(results: dict, spec: dict) -> str:
    """A quality column's label; "{large_batch}" becomes the latency evaluator's large batch
    (one size, or the sizes the variants used)."""
    if "{large_batch}" not in spec["label"]:
        return spec["label"]
    sizes = dict.fromkeys(
        f"{r['metrics']['latency_batch_size']['mean']:.0f}"
        for r in results["variants"]
        if "latency_batch_size" in r["metrics"]
    )
    return spec["label"].format(large_batch="/".join(sizes) or "N")


def signature_note(records: list[dict], results: dict) -> str | None:
    """What the scores with a signature are (BLEU, chrF), with each distinct sacrebleu signature
    once (Markdown); None when no variant has any."""
    found = {}
    for r in records:
        for metric, signature in (r.get("signatures") or {}).items():
            found.setdefault(metric, {})[signature] = None
    if not found:
        return None
    labels = {spec["name"]: spec["label"] for spec in results.get("metrics_info", [])}
    named = "; ".join(
        f"{labels.get(metric, metric)} `{signature}`"
        for metric, signatures in found.items()
        for signature in signatures
    )
    return (
        "BLEU and chrF: sacrebleu's corpus scores (0-100) of the detokenised outputs against "
        "the references; ± over examples is the sem from resampling the sentences (a bootstrap "
        f"of `bs` resamples). Signatures: {named}."
    )


def timed_table(results: dict, table: dict, rows: list[dict]) -> Table:
    """A timed evaluator's rows through its TableSpec's columns."""

    def cell(row: dict, column: dict) -> str:
        value = row.get(column["key"])
        if value is None:
            return "—"
        if column["format"] == "decoder":  # With the variant whose blocks it was timed on.
            return timed_label(results, value, row.get("variant"))
        if column["format"] == "text":
            return str(value)
        return column["format"].format(column["scale"] * value)

    headers = [column["label"] for column in table["columns"]]
    return headers, [[cell(row, column) for column in table["columns"]] for row in rows]


def speed_note(speed: dict) -> str:
    """Which variant's shape was timed, that shape, and how (Markdown)."""
    model = speed.get("model", {})
    formats = {
        "num_layers": "{} layers",
        "d_model": "d_model {}",
        "num_heads": "{} heads",
        "d_ff": "d_ff {}",
        "vocab_size": "vocabulary {}",
    }
    shape = [text.format(model[key]) for key, text in formats.items() if key in model]
    text = f"Timed on the shape of **{speed.get('variant', '?')}**"
    text += f" ({', '.join(shape)})." if shape else "."
    return f"{text} {speed['note']}" if speed.get("note") else text
