"""The layout both reports share: contents, findings, figures, tables, methods, data, settings."""

from __future__ import annotations

from pathlib import Path

from layergain.report.document import Bullets, Document, Figure, Heading, Paragraph, to_html, to_markdown
from layergain.report.summary import json_attr
from layergain.report.tables import TableSpec

__all__ = ["SECTIONS", "add_sections", "settings_items", "write_document"]

SECTIONS = ("Findings", "Figures", "Tables", "Methods", "Data", "Settings")


def settings_items(attrs: dict, skip: tuple[str, ...]) -> list[str]:
    """Every attr but ``skip``, sorted, JSON values spelled out."""
    items = []
    for key in sorted(attrs):
        if key in skip:
            continue
        value = attrs[key]
        if isinstance(value, str) and value[:1] in "[{":
            value = json_attr(attrs, key, value)
        if isinstance(value, dict):
            value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "none"
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "none"
        items.append(f"`{key}`: {value}")
    return items


def add_sections(
    doc: Document,
    *,
    findings: list[str],
    figures: list[tuple[str, str, str]],
    tables: dict[str, TableSpec],
    methods: list[str],
    data: list,
    settings_note: str,
    settings: list[str],
) -> Document:
    """Append the contents and every section; ``figures`` are (file stem, alt text, caption)."""
    doc.add(Bullets([f"[{title}](#{title.lower()})" for title in SECTIONS]))
    doc.add(Heading("Findings"), Bullets(findings))
    doc.add(Heading("Figures"))
    for k, (stem, alt, caption) in enumerate(figures, start=1):
        doc.add(Figure(f"figures/{stem}.png", f"Figure {k}. {caption} PDF: `figures/{stem}.pdf`.", alt=alt))
    doc.add(Heading("Tables"))
    for k, (stem, spec) in enumerate(tables.items(), start=1):
        table = spec.markdown()
        table.caption = f"Table {k}. {spec.caption} LaTeX: `tables/{stem}.tex` (label `{spec.label}`)."
        doc.add(table)
    doc.add(Heading("Methods"), *[Paragraph(p) for p in methods])
    doc.add(Heading("Data"), *data)
    doc.add(Heading("Settings"), Paragraph(settings_note), Bullets(settings))
    return doc


def write_document(doc: Document, out: Path) -> list[Path]:
    """``out/report.md`` and the self-contained ``out/report.html`` (figures must exist already)."""
    md, html = Path(out) / "report.md", Path(out) / "report.html"
    md.write_text(to_markdown(doc), encoding="utf-8")
    html.write_text(to_html(doc, Path(out)), encoding="utf-8")
    return [md, html]
