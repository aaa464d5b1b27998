"""A run report as a list of sections, rendered to Markdown and to one self-contained HTML page.

The same :class:`Section` list gives both files, so they always say the same thing: Markdown
links its figures by file name, HTML inlines them as base64 ``data:`` URIs (the page opens anywhere,
with no file beside it).
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Figure:
    """A PNG file of the report folder and its caption."""

    file: str
    caption: str


@dataclass
class Section:
    """A titled part of the report: paragraphs, then an optional table (first row: header), then figures."""

    title: str
    paragraphs: list = field(default_factory=list)
    table: list = field(default_factory=list)
    figures: list = field(default_factory=list)


def format_value(value) -> str:
    """A table cell: floats to at most 4 decimals (6 significant digits when tiny or huge), the rest as ``str``."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def _markdown_cell(value) -> str:
    return format_value(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(title: str, sections: list) -> str:
    """The report as Markdown; figures are linked by their file names (relative to the report)."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        if section.table:
            header, *rows = section.table
            lines.append("| " + " | ".join(_markdown_cell(c) for c in header) + " |")
            lines.append("|" + " --- |" * len(header))
            lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in rows]
            lines.append("")
        for figure in section.figures:
            lines += [f"![{figure.caption}]({figure.file})", "", f"*{figure.caption}*", ""]
    return "\n".join(lines)


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.6rem; text-align: left; }
th { background: #f2f2f2; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-style: italic; color: #555; }
"""


def _html_table(table: list) -> str:
    header, *rows = table
    head = "".join(f"<th>{html.escape(format_value(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(format_value(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_figure(figure: Figure, folder: Path) -> str:
    data = base64.b64encode((folder / figure.file).read_bytes()).decode("ascii")
    caption = html.escape(figure.caption)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}" data-file="{html.escape(figure.file)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def to_html(title: str, sections: list, folder: Path) -> str:
    """The report as one HTML page with every figure of ``folder`` inlined."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(paragraph)}</p>" for paragraph in section.paragraphs]
        if section.table:
            parts.append(_html_table(section.table))
        parts += [_html_figure(figure, folder) for figure in section.figures]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
