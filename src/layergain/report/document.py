"""A small document model rendered to Markdown and to one self-contained HTML file.

A report is built once as a list of blocks; both renderers turn the same blocks into their format,
so the Markdown and the HTML report always say the same thing. Inline text uses a Markdown subset:
``**bold**``, ``*italic*``, ```code``` and ``[text](#anchor)`` links inside the document.

The HTML has no scripts and loads nothing: figures are embedded as ``data:`` URIs, the style is
inline, and a Content-Security-Policy forbids every other source, so a browser shows the file the
same way offline, mailed, or attached to a submission.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Bullets",
    "Document",
    "Figure",
    "Heading",
    "Paragraph",
    "Preformatted",
    "Table",
    "slug",
    "to_html",
    "to_markdown",
]


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    align: str = ""  # one of "l", "r", "c" per column; default: first left, rest right
    notes: str = ""  # shown below the table


@dataclass
class Figure:
    path: str  # PNG, relative to the report folder
    caption: str
    alt: str = ""


@dataclass
class Preformatted:
    text: str


@dataclass
class Document:
    title: str
    blocks: list = field(default_factory=list)

    def add(self, *blocks) -> None:
        self.blocks.extend(blocks)

    def contents(self, level: int = 2) -> Bullets:
        """Links to the headings of ``level`` added so far (a table of contents)."""
        return Bullets(
            [
                f"[{b.text}](#{slug(b.text)})"
                for b in self.blocks
                if isinstance(b, Heading) and b.level == level
            ]
        )


def slug(text: str) -> str:
    """Heading anchor as GitHub makes it: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", text.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _align(table: Table) -> str:
    return table.align or ("l" + "r" * (len(table.header) - 1))


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document) -> str:
    lines = [f"# {doc.title}", ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            if block.caption:
                lines += [f"**{block.caption}**", ""]
            marks = {"l": ":---", "r": "---:", "c": ":---:"}
            lines.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
            lines.append("|" + "|".join(marks[a] for a in _align(block)) + "|")
            lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in block.rows]
            lines.append("")
            if block.notes:
                lines += [f"*{block.notes}*" if "*" not in block.notes else block.notes, ""]
        elif isinstance(block, Figure):
            lines += [f"![{block.alt or block.caption}]({block.path})", "", f"*{block.caption}*", ""]
        elif isinstance(block, Preformatted):
            lines += ["```text", block.text.rstrip("\n"), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


_CODE = re.compile(r"`([^`]+)`")
_INLINE = [
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![*\w])\*([^*\s][^*]*)\*(?![*\w])"), r"<em>\1</em>"),
    (re.compile(r"\[([^\]]+)\]\((#[\w\-]*)\)"), r'<a href="\2">\1</a>'),
]


def _inline(text: str) -> str:
    """Inline Markdown subset to HTML; code spans stay literal, links only within the document."""
    codes: list[str] = []

    def stash(match: re.Match) -> str:
        codes.append(f"<code>{html.escape(match.group(1), quote=False)}</code>")
        return f"\x00{len(codes) - 1}\x00"

    out = html.escape(_CODE.sub(stash, text.replace("\x00", "")), quote=False)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return re.sub("\x00(\\d+)\x00", lambda m: codes[int(m.group(1))], out)


_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       line-height: 1.55; max-width: 64rem; margin: 0 auto; padding: 1rem 1.25rem 3rem; color: #1a1a1a;
       background: #fff; overflow-wrap: break-word; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 0.5rem 0 1rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; padding-bottom: 0.2rem; border-bottom: 1px solid #d8d8d8; }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
a { color: #0b5cad; }
ul { padding-left: 1.4rem; } li { margin: 0.3rem 0; }
.table { margin: 1.4rem 0; }
.table .caption { font-weight: 600; margin: 0 0 0.4rem; }
.table .notes { font-size: 0.85rem; color: #444; margin: 0.4rem 0 0; }
.scroll { overflow-x: auto; max-width: 100%; -webkit-overflow-scrolling: touch; border-left: 1px solid #eee;
          border-right: 1px solid #eee; }
table { border-collapse: collapse; font-size: 0.84rem; font-variant-numeric: tabular-nums; margin: 0; }
th, td { padding: 0.28rem 0.55rem; border-bottom: 1px solid #e6e6e6; white-space: nowrap;
         vertical-align: top; }
thead th { border-bottom: 2px solid #888; text-align: left; background: #fafafa; }
tbody tr:nth-child(even) { background: #fbfbfb; }
td.r, th.r { text-align: right; } td.c, th.c { text-align: center; }
figure { margin: 1.6rem 0; } figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { font-size: 0.9rem; color: #333; margin-top: 0.4rem; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.88em;
       background: #f2f2f2; padding: 0 0.2em; border-radius: 3px; overflow-wrap: anywhere; }
td code, th code { overflow-wrap: normal; }
pre { background: #f6f6f6; padding: 0.7rem; overflow-x: auto; font-size: 0.82rem; white-space: pre-wrap;
      overflow-wrap: anywhere; }
@media (max-width: 40rem) {
  body { padding: 0.6rem 0.75rem 2rem; font-size: 0.96rem; }
  h1 { font-size: 1.35rem; } h2 { font-size: 1.15rem; }
  table { font-size: 0.78rem; }
}
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  figure, .table { break-inside: avoid; }
  .scroll { overflow: visible; border: 0; }
  a { color: inherit; text-decoration: none; }
}
"""


def _table_html(block: Table) -> str:
    align = _align(block)
    head = "".join(f'<th class="{a}" scope="col">{_inline(h)}</th>' for h, a in zip(block.header, align))
    body = "".join(
        "<tr>" + "".join(f'<td class="{a}">{_inline(c)}</td>' for c, a in zip(row, align)) + "</tr>"
        for row in block.rows
    )
    caption = f'<p class="caption">{_inline(block.caption)}</p>' if block.caption else ""
    notes = f'<p class="notes">{_inline(block.notes)}</p>' if block.notes else ""
    return (
        f'<div class="table">{caption}<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>{notes}</div>"
    )


def to_html(doc: Document, base: Path) -> str:
    """Self-contained HTML: figures embedded as data URIs, no scripts, nothing loaded from elsewhere."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(doc.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_inline(doc.title)}</h1>",
    ]
    for block in doc.blocks:
        if isinstance(block, Heading):
            parts.append(f'<h{block.level} id="{slug(block.text)}">{_inline(block.text)}</h{block.level}>')
        elif isinstance(block, Paragraph):
            parts.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, Table):
            parts.append(_table_html(block))
        elif isinstance(block, Figure):
            data = base64.b64encode((Path(base) / block.path).read_bytes()).decode("ascii")
            alt = html.escape(block.alt or block.caption)
            parts.append(
                f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
                f"<figcaption>{_inline(block.caption)}</figcaption></figure>"
            )
        elif isinstance(block, Preformatted):
            parts.append(f"<pre>{html.escape(block.text.rstrip(chr(10)))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
