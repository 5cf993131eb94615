"""A report document built once and written twice: Markdown and self-contained HTML
(figures embedded as base64 PNG, so index.html opens from the file system)."""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

import pandas as pd

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#1f2328;line-height:1.45}
h1{border-bottom:2px solid #d0d7de;padding-bottom:.3em}h2{border-bottom:1px solid #d0d7de;margin-top:2em}
table.tbl{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.85em}
table.tbl td,table.tbl th{border:1px solid #d0d7de;padding:3px 7px;text-align:right;vertical-align:top}
table.tbl th{background:#f6f8fa}table.tbl td.text{text-align:left;max-width:48em}
figure{margin:1em 0 2em}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-style:italic;font-size:.9em;color:#57606a}
.note{background:#fff8c5;border-left:4px solid #d4a72c;padding:.4em .8em}
.verdict{background:#f6f8fa;border-left:4px solid #0969da;padding:.2em 1em}
td.supported{background:#dafbe1}td.not-supported{background:#ffebe9}td.not-tested{background:#eaeef2}
code{background:#f6f8fa;padding:0 .2em}nav ul{columns:2}.scroll{overflow-x:auto;max-width:100%}
"""


def inline_html(text: str) -> str:
    escaped = html.escape(text)
    escaped = _BOLD.sub(r"<strong>\1</strong>", escaped)
    return _CODE.sub(r"<code>\1</code>", escaped)


def _cell(value, digits: int) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        if value != 0 and (abs(value) < 10**-digits or abs(value) >= 1e6):
            return f"{value:.3g}"
        return f"{value:.{digits}f}"
    return str(value)


def md_table(df: pd.DataFrame, digits: int = 3) -> str:
    if df.empty:
        return "_(none)_\n"
    columns = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, digits).replace("|", "\\|").replace("\n", " ") for v in row) + " |")
    return "\n".join(lines) + "\n"


def html_table(df: pd.DataFrame, digits: int = 3, classes: dict[str, str] | None = None) -> str:
    """A plain HTML table; `classes` maps a cell value to a CSS class (e.g. verdicts)."""
    if df.empty:
        return "<p><em>(none)</em></p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for value in row:
            text = _cell(value, digits)
            css = []
            if isinstance(value, str) and not _looks_numeric(value):
                css.append("text")
            if classes and text in classes:
                css.append(classes[text])
            attr = f' class="{" ".join(css)}"' if css else ""
            cells.append(f"<td{attr}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table class="tbl"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


class Document:
    """Builds the Markdown and HTML twins section by section."""

    def __init__(self, figures_dir: Path, figures_link: str = "figures") -> None:
        self.md: list[str] = []
        self.html: list[str] = []
        self.toc: list[tuple[str, str]] = []
        self.figures_dir = figures_dir
        self.figures_link = figures_link

    def heading(self, text: str, level: int = 2) -> None:
        anchor = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
        if level == 2:
            self.toc.append((anchor, text))
        self.md.append(f"{'#' * level} {text}\n")
        self.html.append(f'<h{level} id="{anchor}">{html.escape(text)}</h{level}>')

    def para(self, text: str, css: str | None = None) -> None:
        self.md.append((f"> {text}" if css == "note" else text) + "\n")
        attr = f' class="{css}"' if css else ""
        self.html.append(f"<p{attr}>{inline_html(text)}</p>")

    def bullets(self, items: list[str]) -> None:
        self.md.append("\n".join(f"- {item}" for item in items) + "\n")
        self.html.append("<ul>" + "".join(f"<li>{inline_html(item)}</li>" for item in items) + "</ul>")

    def block(self, lines: list[str], css: str) -> None:
        """Markdown lines (paragraphs and `- ` bullets) inside a styled HTML block."""
        md: list[str] = []
        for line in lines:
            bullet = line.startswith("- ")
            if md and not (bullet and md[-1].startswith("- ")):
                md.append("")
            md.append(line)
        self.md.append("\n".join(md) + "\n")
        parts, items = [], []
        for line in lines:
            if line.startswith("- "):
                items.append(f"<li>{inline_html(line[2:])}</li>")
                continue
            if items:
                parts.append("<ul>" + "".join(items) + "</ul>")
                items = []
            parts.append(f"<p>{inline_html(line.strip())}</p>")
        if items:
            parts.append("<ul>" + "".join(items) + "</ul>")
        self.html.append(f'<div class="{css}">{"".join(parts)}</div>')

    def table(
        self, df: pd.DataFrame, digits: int = 3, collapsed: str | None = None, classes: dict[str, str] | None = None
    ) -> None:
        self.md.append(md_table(df, digits))
        table = html_table(df, digits, classes)
        if collapsed:
            table = f"<details><summary>{html.escape(collapsed)}</summary>{table}</details>"
        self.html.append(table)

    def figure(self, name: str | None, caption: str) -> None:
        if not name:
            return
        link = f"{self.figures_link}/{name}"
        self.md.append(f"![{caption}]({link}.png)\n\n_{caption}_ ([SVG]({link}.svg))\n")
        data = base64.b64encode((self.figures_dir / f"{name}.png").read_bytes()).decode()
        self.html.append(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}"/>'
            f'<figcaption>{html.escape(caption)} (<a href="{link}.svg">SVG</a>)</figcaption></figure>'
        )

    def render_markdown(self) -> str:
        return "\n".join(self.md)

    def render_html(self, title: str) -> str:
        toc = "".join(f'<li><a href="#{anchor}">{html.escape(text)}</a></li>' for anchor, text in self.toc)
        body = list(self.html)
        if toc and body:
            body.insert(1, f"<nav><strong>Contents</strong><ul>{toc}</ul></nav>")
        return (
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>\n"
        )
