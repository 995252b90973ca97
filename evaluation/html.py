"""Renders the report as Markdown (report.md, figures linked) and self-contained HTML (index.html,
figures embedded as base64 PNG)."""

import base64
import html
import re

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
        "sampling_speed.png",
        "Sampling speed",
        "Greedy decoding, batch 1, random prompt of "
        "fixed length; the no-cache sampler recomputes the whole prefix at every step.",
    ),
    (
        "training_speed.png",
        "Training speed",
        "One optimizer step per objective, same model "
        "and batch; sequential training runs one forward pass per position.",
    ),
)

METHODS = [
    "**Perturbation**: every real token after position t is replaced by a different random "
    "symbol; the number is the largest |Δ logits| (fp32) at positions ≤ t, over several t in the "
    "scored range of each row and over the rows. Exactly 0.0 means no scored prediction reads "
    "the future.",
    "**Future share**: share of the dependency map's mass strictly above the diagonal, over the "
    "scored rows (a prefix-LM reads its prompt by design; the prompt rows are not scored).",
    "**Honest loss**: the held-out next-token loss with position t computed from x[:t+1] alone "
    "(later tokens become padding, which every mask hides). It is what an AR decoder would see.",
    "**Random-token floor**: loss on uniformly random symbols (the `random` task, same symbols "
    "and lengths). No honest model beats ln(num_symbols); a model not trained on random tokens "
    "may sit far above it, so only a loss *below* the floor says something (it proves leakage).",
    "**Generation**: greedy AR decoding of each held-out prompt, compared with the reference "
    "continuation (target tokens, then EOS). For a full-mask model, *AR (no cache, honest)* "
    "recomputes the prefix at each step (the function it was trained as); *AR (cache, naive)* is "
    "what code written for causal models runs: with a cache, keys never see later tokens, so it "
    "is a different function. Should a reference not fit in max_len + 1 tokens after the batch's "
    "longest prompt, it is cut to what fits.",
    "**Speed**: random weights of the variant's shape (cost does not depend on weight values); "
    "median of several runs after a compiling run, compile time reported apart.",
]

CSS = """
body{font:15px/1.5 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1d2330;
 max-width:1180px;margin:0 auto;padding:28px 32px 60px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:34px 0 10px;padding-bottom:4px;
 border-bottom:1px solid #e3e6ec}h3{font-size:15px;margin:20px 0 6px}
.meta{color:#5b6475;font-size:13px}.meta code{font-size:12px}
table{border-collapse:collapse;margin:8px 0 18px;font-size:13px;width:100%}
th,td{padding:5px 8px;border-bottom:1px solid #e8ebf0;text-align:right;white-space:nowrap}
th{background:#f5f7fa;font-weight:600;color:#2b3345;white-space:normal;vertical-align:bottom}
th:first-child,td:first-child{text-align:left}tr:hover td{background:#fafbfd}
ul.verdicts{padding-left:0;list-style:none}ul.verdicts li{margin:5px 0;padding:7px 12px;
 background:#f4f8fd;border-left:3px solid #3b7dd8;border-radius:3px}
figure{margin:12px 0 26px}figure img{max-width:100%;border:1px solid #eceef2;border-radius:4px}
figcaption{color:#5b6475;font-size:13px;margin-top:4px}
pre{background:#f6f8fa;padding:10px 12px;border-radius:4px;font-size:12.5px;overflow-x:auto}
.note{color:#5b6475;font-size:13px}
"""


def _meta_lines(results: dict) -> list[str]:
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


def _nar_tables(nar: dict) -> list[tuple[str, list[dict]]]:
    return [
        (key, value)
        for key, value in nar.items()
        if isinstance(value, list) and value and isinstance(value[0], dict)
    ]


def _cell(key: str, value) -> str:
    """A non-AR table cell, formatted by its column: shares as %, seconds as ms, rates as ints."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if key in ("exact_match", "token_accuracy"):
        return f"{100 * value:.1f}%"
    if key == "tokens_per_s":
        return f"{value:,.0f}"
    if key.endswith("_s"):
        return f"{1e3 * value:.2f} ms" if key != "compile_s" else f"{value:.2f} s"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def markdown(results: dict, images: dict[str, bytes], tables: list) -> str:
    """report.md: the same content as index.html, figures as relative links."""
    lines = [f"# {results['experiment']}: auto-regressive vs leaky vs non-AR decoding", ""]
    lines += [f"- {line}" for line in _meta_lines(results)] + ["", "## Verdicts", ""]
    lines += [f"- {v}" for v in results["verdicts"]] + [""]
    for title, (headers, rows) in tables:
        lines += [
            f"## {title}",
            "",
            "| " + " | ".join(headers) + " |",
            "|" + "|".join("---" for _ in headers) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in rows] + [""]
    for name, title, caption in FIGURES:
        if name in images:
            lines += [f"## {title}", "", f"![{title}]({name})", "", caption, ""]
    lines += ["## Sample generations", ""]
    for record in results["variants"]:
        for decoder, samples in record.get("samples", {}).items():
            lines += [f"**{record['name']}**, {decoder}:", "", "```", *samples, "```", ""]
    for record in results["variants"]:
        if record.get("nar"):
            lines += [f"## Non-AR: {record['name']}", ""]
            lines += [f"- {v}" for v in record["nar"].get("verdicts", [])] + [""]
            for key, rows in _nar_tables(record["nar"]):
                headers = list(rows[0])
                lines += [
                    f"**{key}**",
                    "",
                    "| " + " | ".join(headers) + " |",
                    "|" + "|".join("---" for _ in headers) + "|",
                ]
                lines += [
                    "| " + " | ".join(_cell(h, r.get(h, "")) for h in headers) + " |" for r in rows
                ] + [""]
            if record["nar"].get("samples"):
                lines += ["```", *record["nar"]["samples"], "```", ""]
    lines += ["## How each number is measured", ""] + [f"- {m}" for m in METHODS] + [""]
    return "\n".join(lines)


def _table_html(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(results: dict, images: dict[str, bytes], tables: list) -> str:
    """index.html: one self-contained file (CSS inline, PNGs as data URIs)."""
    esc = html.escape
    parts = [f"<h1>{esc(results['experiment'])}: auto-regressive vs leaky vs non-AR decoding</h1>"]
    parts += [f'<div class="meta">{"<br>".join(esc(x) for x in _meta_lines(results))}</div>']
    parts += ["<h2>Verdicts</h2><ul class='verdicts'>"]
    parts += [f"<li>{esc(v)}</li>" for v in results["verdicts"]] + ["</ul>"]
    for title, (headers, rows) in tables:
        parts += [f"<h2>{esc(title)}</h2>", _table_html(headers, rows)]
    for name, title, caption in FIGURES:
        if name in images:
            data = base64.b64encode(images[name]).decode("ascii")
            parts += [
                f"<h2>{esc(title)}</h2><figure><img alt='{esc(title)}' "
                f"src='data:image/png;base64,{data}'><figcaption>{esc(caption)}"
                "</figcaption></figure>"
            ]
    parts += ["<h2>Sample generations</h2>"]
    for record in results["variants"]:
        for decoder, samples in record.get("samples", {}).items():
            parts += [
                f"<h3>{esc(record['name'])} · {esc(decoder)}</h3>",
                f"<pre>{esc(chr(10).join(samples))}</pre>",
            ]
    for record in results["variants"]:
        if record.get("nar"):
            parts += [f"<h2>Non-AR: {esc(record['name'])}</h2><ul class='verdicts'>"]
            parts += [f"<li>{esc(v)}</li>" for v in record["nar"].get("verdicts", [])] + ["</ul>"]
            for key, rows in _nar_tables(record["nar"]):
                headers = list(rows[0])
                parts += [
                    f"<h3>{esc(key)}</h3>",
                    _table_html(headers, [[_cell(h, r.get(h, "")) for h in headers] for r in rows]),
                ]
            if record["nar"].get("samples"):
                parts += [f"<pre>{esc(chr(10).join(record['nar']['samples']))}</pre>"]
    parts += ["<h2>How each number is measured</h2><ul>"]
    parts += [f"<li>{_bold(esc(m))}</li>" for m in METHODS] + ["</ul>"]
    # Lets a headless browser report whether every figure decoded (read from the title).
    script = (
        "window.addEventListener('load',()=>{const i=[...document.images];"
        "document.title='images '+i.filter(x=>x.complete&&x.naturalWidth>0).length+'/'"
        "+i.length;});"
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(results['experiment'])} report</title><style>{CSS}</style>"
        f"<script>{script}</script></head><body>{''.join(parts)}</body></html>\n"
    )


def _bold(text: str) -> str:
    """Turns the **x** of METHODS into <b>x</b> (and *x* into <i>x</i>)."""
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"\*(.+?)\*", r"<i>\1</i>", text)
