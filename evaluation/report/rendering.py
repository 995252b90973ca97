"""Renders a results dict into the report's files: one list of sections through two jinja2
templates (report.md with figures linked, index.html self-contained with figures embedded)."""

import base64
import json
import os

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup

from evaluation.report.figures import figures
from evaluation.report.sections import meta_lines, sections

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
_MARKDOWN = MarkdownIt("commonmark", {"html": False})  # Raw HTML in the text is escaped.


def inline_markdown(text: str) -> Markup:
    """Inline Markdown (bold, italic, code) as HTML, for verdicts, notes and captions."""
    return Markup(_MARKDOWN.renderInline(text))


def table_cell(text: str) -> str:
    """A Markdown table cell: a literal | would end the cell."""
    return text.replace("|", "\\|")


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["inline"] = inline_markdown
    environment.filters["cell"] = table_cell
    return environment


ENVIRONMENT = _environment()


def render(results: dict) -> dict[str, str | bytes]:
    """File name -> content: results.json, report.md, index.html and each figure's PNG."""
    # First, so a NaN raises before anything is drawn.
    results_json = json.dumps(results, indent=1, allow_nan=False) + "\n"
    images = figures(results)
    context = {
        "title": f"{results['experiment']}: auto-regressive vs leaky vs non-AR decoding",
        "experiment": results["experiment"],
        "meta": meta_lines(results),
        "sections": sections(results, images),
    }
    data_uris = {
        name: "data:image/png;base64," + base64.b64encode(png).decode("ascii")
        for name, png in images.items()
    }
    return {
        "results.json": results_json,
        "report.md": ENVIRONMENT.get_template("report.md.j2").render(context),
        "index.html": ENVIRONMENT.get_template("index.html.j2").render(context, images=data_uris),
        **images,
    }
