"""The report's content as one list of sections; report.md and index.html both loop over it.

A section is a dict with `kind` (warning, verdicts, table, figure, samples, bullets), `title`
(None for none), `note` (Markdown or None) and the fields of its kind. Text fields that may hold
Markdown (entries, notes, captions) are Markdown; table cells and sample lines are plain text.
A samples block has `lines`; a translation task's also has `headers` and `rows` (source,
reference, hypothesis), which index.html shows as a table.
"""

from evaluation.report import tables
from evaluation.report.figures import FIGURES
from evaluation.report.verdicts import verdicts

METHODS = [
    "**Perturbation**: every real token after position t is replaced by a different random "
    "symbol; the number is the largest |Δ logits| (fp32) at positions ≤ t, over several t in the "
    "scored range of each row and over the rows. Exactly 0.0 means no scored prediction reads "
    "the future.",
    "**Future share**: share of the dependency map's mass strictly above the diagonal, over the "
    "scored rows (a prefix-LM reads its prompt by design; the prompt rows are not scored).",
    "**Honest loss**: the held-out next-token loss with position t computed from x[:t+1] alone "
    "(later tokens become padding, which every mask hides). It is what an AR decoder would see.",
    "**Held-out loss** is token-weighted: the summed cross-entropy over every scored token "
    "divided by the number of scored tokens (the same definition as training's eval lines); its "
    "sem is the ratio estimator's over examples.",
    "**Random-token floor**: loss on uniformly random symbols (the `random` task, same symbols "
    "and lengths). No honest model beats ln(num_symbols); a model not trained on random tokens "
    "may sit far above it, so only a loss *below* the floor says something (it proves leakage).",
    "**Generation**: each decoder (listed below) continues each held-out prompt; the output is "
    "compared with the reference "
    "continuation (target tokens, then EOS). For a full-mask model, *AR (no cache, honest)* "
    "recomputes the prefix at each step (the function it was trained as); *AR (cache, naive)* is "
    "what code written for causal models runs: with a cache, keys never see later tokens, so it "
    "is a different function. Should a reference not fit in max_len + 1 tokens after the batch's "
    "longest prompt, it is cut to what fits.",
    "**Non-AR decoders** (mask-predict) are given each row's reference target length (an oracle "
    "length) and append EOS after it, except those named *predicted length*, which take it from "
    "the model's length head; an AR decoder has to find the end itself. **Exact-parallel "
    "decoders** (speculative, Jacobi) are checked against greedy AR on every row.",
    "**Speed**: random weights of the variant's shape (cost does not depend on weight values); "
    "median of several runs after a compiling run, compile time reported apart.",
]


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


def _speed_sections(speed: dict) -> list[dict]:
    out, note = [], tables.speed_note(speed) if speed else None
    if speed.get("sampling"):
        out.append(_table("Decoding speed", tables.sampling_table(speed["sampling"]), 2, note))
        note = None
    if speed.get("training"):
        out.append(_table("Training speed", tables.training_table(speed["training"]), 2, note))
    return out


def _methods(results: dict) -> list[dict]:
    """METHODS, then one bullet listing each decoder with its family and description."""
    decoders = [
        f"*{name}* ({info['family']}"
        + (f"; needs a second model: {info['needs']}" if info.get("needs") else "")
        + f"): {info['description']}"
        for name, info in results.get("decoders", {}).items()
    ]
    items = [{"text": text, "children": []} for text in METHODS]
    if decoders:
        items.append(
            {"text": "**Decoders** (family: AR, non-AR or exact-parallel):", "children": decoders}
        )
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
    out.append(_section("verdicts", "Verdicts", entries=verdicts(results)))
    out.append(_table(tables.SUMMARY_TITLE, tables.summary_table(results["variants"]), 4))
    quality = tables.quality_table(results)
    if quality[1]:
        note = tables.signature_note(results["variants"])
        out.append(_table("Generation on held-out examples", quality, 3, note))
    out += _speed_sections(results.get("speed") or {})
    out += [
        _section("figure", title, file=name, caption=caption)
        for name, title, caption in FIGURES
        if name in images
    ]
    blocks = [
        _sample_block(r["name"], decoder, samples)
        for r in results["variants"]
        for decoder, samples in r.get("samples", {}).items()
    ]
    if blocks:
        out.append(_section("samples", "Sample generations", blocks=blocks))
    out.append(_section("bullets", "How each number is measured", entries=_methods(results)))
    return out
