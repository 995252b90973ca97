"""The report's content as one list of sections; report.md and index.html both loop over it.

A section is a dict with `kind` (warning, verdicts, table, figure, samples, bullets), `title`
(None for none), `note` (Markdown or None) and the fields of its kind. Text fields that may hold
Markdown (entries, notes, captions) are Markdown; table cells and sample lines are plain text.
A samples block has `lines`; a translation task's also has `headers` and `rows` (source,
reference, hypothesis), which index.html shows as a table.
"""

from evaluation.report import tables
from evaluation.report.figures import FIGURES
from evaluation.report.findings import findings_table
from evaluation.report.records import label_of
from evaluation.report.verdicts import verdict_groups


def _section(kind: str, title: str | None, note: str | None = None, **content) -> dict:
    return {"kind": kind, "title": title, "note": note, **content}


def meta_lines(results: dict) -> list[str]:
    """Where, when, on what and from which commit the numbers come (plain text)."""
    device = results["device"]
    dirty = " (with uncommitted changes)" if results.get("commit_dirty") else ""
    versions = ", ".join(f"{k} {v}" for k, v in results["versions"].items() if v)
    return [
        f"Run folder: {results['workdir']} · created {results['created']}",
        f"Device: {device['count']} × {device['platform']} ({device['kind']}), host "
        f"{device['host_cpu']}, {device['host_cores']} cores",
        f"Commit: {results['commit']}{dirty}",
        f"Versions: {versions}",
    ]


def warnings(results: dict) -> list[str]:
    """Variants defined but never trained, and variants evaluated before their last step."""
    out = []
    untrained = results.get("untrained_variants") or []
    if untrained:
        names = ", ".join(f"**{name}**" for name in untrained)
        out.append(
            f"not trained (no checkpoint), so missing from every table and figure below: {names}."
        )
    for r in results["variants"]:
        early = [
            f"step {step} of {r['num_steps']} (seed {seed})"
            for seed, step in zip(r["seeds"], r["steps"], strict=True)
            if step != r["num_steps"]
        ]
        if early:
            out.append(f"{r['name']}: evaluated at {', '.join(early)}")
    return out


def _table(title: str, table: tables.Table, text_columns: int, note: str | None = None) -> dict:
    """A table whose first `text_columns` columns hold text (left-aligned), the rest numbers."""
    headers, rows = table
    return _section("table", title, note, headers=headers, rows=rows, text_columns=text_columns)


def _timed_sections(results: dict) -> list[dict]:
    """One table per TableSpec with rows; the first carries the note on what was timed."""
    speed = results.get("speed") or {}
    out, note = [], tables.speed_note(speed) if speed else None
    for table in results.get("tables_info", []):
        if speed.get(table["name"]):
            cells = tables.timed_table(results, table, speed[table["name"]])
            out.append(_table(table["title"], cells, table["text_columns"], note))
            note = None
    return out


def _methods(results: dict) -> list[dict]:
    """How each described metric and table is measured, then each decoder with its family."""
    # A metric no variant has (its evaluator measured nothing: see "Not measured") is not described.
    measured = {k.partition("/")[0] for r in results.get("variants", []) for k in r["metrics"]}
    metrics = [d for d in results.get("metrics_info", []) if d["name"] in measured]
    described = [*metrics, *results.get("tables_info", [])]
    items = [{"text": d["method"], "children": []} for d in described if d["method"]]
    families = results.get("families", {})
    if families:
        text = "**Decoder families**: " + "; ".join(
            f"*{name}*: {about}" for name, about in families.items()
        )
        items.append({"text": text, "children": []})
    decoders = [
        f"*{info['label']}* ({info['family']}"
        + (f"; needs a second model: {info['needs']}" if info.get("needs") else "")
        + f"): {info['description']}"
        for info in results.get("decoders", {}).values()
    ]
    if decoders:
        items.append({"text": "**Decoders** (family: " + ", ".join(families) + "):",
                      "children": decoders})  # fmt: skip
    skipped: dict[tuple[str, str], list[str]] = {}
    for record in results.get("variants", []):
        for evaluator, reason in (record.get("skipped") or {}).items():
            skipped.setdefault((evaluator, reason), []).append(record["name"])
    if skipped:
        children = [
            f"*{evaluator}* on {', '.join(names)}: {reason}"
            for (evaluator, reason), names in skipped.items()
        ]
        items.append({"text": "**Not measured**, and why:", "children": children})
    return items


TRANSLATION_COLUMNS = ("source", "reference", "hypothesis")


def _one_line(text: str) -> str:
    """`text` on one line, any control character (an untrained model writes some) shown as �."""
    return "".join(c if c.isprintable() else "\ufffd" for c in " ".join(text.split()))


def _sample_block(variant: str, decoder: str, samples: list) -> dict:
    """Sample lines; translation samples ({source, reference, hypothesis}) as table rows too,
    and as labelled lines, one sample after another."""
    rows = [
        [_one_line(sample[column]) for column in TRANSLATION_COLUMNS]
        for sample in samples
        if isinstance(sample, dict)
    ]
    lines = [line for line in samples if isinstance(line, str)]
    for index, row in enumerate(rows):
        labelled = zip(TRANSLATION_COLUMNS, row, strict=True)
        lines += [""] if index else []  # A blank line between samples.
        lines += [f"{column + ':':<12}{text}" for column, text in labelled]
    headers = list(TRANSLATION_COLUMNS) if rows else []
    return dict(variant=variant, decoder=decoder, lines=lines, headers=headers, rows=rows)


def sections(results: dict, images: dict[str, bytes]) -> list[dict]:
    """Every section of the report, in order; `images` are the figures drawn."""
    out = []
    if warnings(results):
        out.append(_section("warning", None, entries=warnings(results)))
    headers, rows = findings_table(results)
    if rows:
        note = "One row per claim: the variants it holds for, and their numbers where they differ."
        out.append(
            _section(
                "table", "Findings", note, headers=headers, rows=rows, text_columns=3, wrap=True
            )
        )
    out.append(
        _section("verdicts", "Verdicts, variant by variant", groups=verdict_groups(results),
                 folded=bool(rows))
    )  # fmt: skip
    out.append(_table(tables.SUMMARY_TITLE, tables.summary_table(results), 4))
    out += [_table(title, table, 1) for title, table in tables.own_tables(results)]
    quality = tables.quality_table(results)
    if quality[1]:
        note = tables.signature_note(results["variants"], results)
        out.append(_table("Generation on held-out examples", quality, 3, note))
    out += _timed_sections(results)
    out += [
        _section("figure", title, file=name, caption=caption)
        for name, title, caption in FIGURES
        if name in images
    ]
    blocks = [
        _sample_block(r["name"], label_of(results, decoder), samples)
        for r in results["variants"]
        for decoder, samples in r.get("samples", {}).items()
    ]
    if blocks:
        out.append(_section("samples", "Sample generations", blocks=blocks))
    out.append(_section("bullets", "How each number is measured", entries=_methods(results)))
    return out
