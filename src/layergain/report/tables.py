r"""Tables described once, rendered as a Markdown/HTML :class:`~layergain.report.document.Table` and as LaTeX.

A :class:`TableSpec` holds typed columns and raw numbers; formatting happens here, at report time.
The LaTeX form is a ``table`` float with ``booktabs`` rules and ``siunitx`` ``S`` columns: each
number is written plainly (``-0.029``, ``<0.001``, ``1234567``) so siunitx aligns it on the
decimal marker, and a missing value is the braced text ``{--}``. A confidence interval is two ``S``
columns (lower, upper) under one spanning header. Preamble needed::

    \usepackage{booktabs}
    \usepackage{siunitx}
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from layergain.report import fmt
from layergain.report.document import Table

__all__ = ["Column", "TableSpec", "latex_escape", "latex_label", "standalone", "to_latex", "write_latex"]

Kind = Literal["text", "code", "int", "num", "signed", "p", "ci", "sd"]


@dataclass(frozen=True)
class Column:
    """One column: its Markdown header, LaTeX header (TeX source), kind and digits.

    Kinds: ``text`` (a string), ``code`` (a name, monospaced), ``int`` (a count), ``num`` (a
    number), ``signed`` (a number with its sign), ``p`` (a p-value), ``ci`` (a pair lower, upper:
    one Markdown cell ``[lo, hi]``, two LaTeX columns), ``sd`` (a number shown as ``± x`` after
    the previous column in Markdown, its own column in LaTeX).
    """

    header: str
    latex: str
    kind: Kind = "num"
    digits: int = 3


@dataclass
class TableSpec:
    """A table: columns, rows of raw values, caption, notes, and a LaTeX label."""

    columns: list[Column]
    rows: list[list[Any]]
    caption: str
    label: str
    notes: str = ""
    latex_caption: str = ""  # TeX source; default: the escaped caption
    latex_notes: str = ""

    def markdown(self) -> Table:
        """The Markdown/HTML block (``sd`` columns join the column before them as ``mean ± sd``)."""
        header, align, keep = [], "", []
        for k, col in enumerate(self.columns):
            if col.kind == "sd":
                continue
            keep.append(k)
            nxt = self.columns[k + 1] if k + 1 < len(self.columns) else None
            header.append(col.header + (f" ± {nxt.header}" if nxt is not None and nxt.kind == "sd" else ""))
            align += "l" if col.kind in ("text", "code") else "r"
        rows = []
        for row in self.rows:
            cells = []
            for k in keep:
                col, value = self.columns[k], row[k]
                cell = _md_value(col, value)
                nxt = self.columns[k + 1] if k + 1 < len(self.columns) else None
                if nxt is not None and nxt.kind == "sd" and not fmt.missing(row[k + 1]):
                    cell += f" ± {fmt.num(row[k + 1], nxt.digits)}"
                cells.append(cell)
            rows.append(cells)
        return Table(header, rows, caption=self.caption, align=align, notes=self.notes)


def _md_value(col: Column, value) -> str:
    if col.kind == "text":
        return str(value)
    if col.kind == "code":
        return f"`{value}`"
    if col.kind == "int":
        return fmt.count(value)
    if col.kind == "signed":
        return fmt.signed(value, col.digits)
    if col.kind == "p":
        return fmt.pval(value)
    if col.kind == "ci":
        lo, hi = value
        return fmt.ci(lo, hi, col.digits)
    return fmt.num(value, col.digits)


# --------------------------------------------------------------------------- LaTeX

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
# Characters pdfLaTeX does not know without extra packages.
_TEX_UNICODE = {
    "×": r"$\times$",
    "−": "-",
    "–": "--",
    "—": "---",
    "≤": r"$\leq$",
    "≥": r"$\geq$",
    "±": r"$\pm$",
    "→": r"$\rightarrow$",
    "χ": r"$\chi$",
    "²": r"\textsuperscript{2}",
    "ρ": r"$\rho$",
    "τ": r"$\tau$",
    "α": r"$\alpha$",
    "…": r"\ldots{}",
    "µ": r"\textmu{}",
    "·": r"$\cdot$",
    "’": "'",
    "‘": "`",
    "“": "``",
    "”": "''",
    "○": r"$\circ$",
    "★": r"$\star$",
    "•": r"$\bullet$",
    "\u00a0": "~",
}


def latex_escape(text: str) -> str:
    """Plain text (with Markdown code spans) as TeX source for pdfLaTeX."""
    out = []
    for k, part in enumerate(re.split(r"`([^`]*)`", str(text))):
        escaped = "".join(_TEX_SPECIAL.get(c, _TEX_UNICODE.get(c, c)) for c in part)
        escaped = re.sub(r"\*\*([^*]+)\*\*", r"\\textbf{\1}", escaped)
        out.append(rf"\texttt{{{escaped}}}" if k % 2 else escaped)
    return "".join(out)


def latex_label(*parts: str) -> str:
    """A ``\\label`` key: lower case letters, digits and hyphens."""
    return ":".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts)


def _digits_before(values, digits: int) -> int:
    finite = [abs(float(v)) for v in values if not fmt.missing(v)]
    biggest = max(finite, default=0.0)
    return max(1, len(str(int(math.floor(round(biggest, digits)))))) if biggest >= 1 else 1


def _s_format(col: Column, values) -> str:
    """siunitx ``table-format`` for a column's values."""
    if col.kind == "int":
        finite = [int(v) for v in values if not fmt.missing(v)]
        return f"{max((len(str(abs(v))) for v in finite), default=1)}.0"
    if col.kind == "p":
        return f"<1.{col.digits}"
    flat = [v for pair in values for v in pair] if col.kind == "ci" else list(values)
    signed = col.kind in ("signed", "ci") or any(not fmt.missing(v) and float(v) < 0 for v in flat)
    return f"{'+' if signed else ''}{_digits_before(flat, col.digits)}.{col.digits}"


def _tex_number(col: Column, value) -> str:
    if fmt.missing(value):
        return "{--}"
    if col.kind == "int":
        return str(int(value))
    if col.kind == "p":
        p = float(value)
        threshold = 10.0**-col.digits
        return f"<{threshold:.{col.digits}f}" if p < threshold else f"{p:.{col.digits}f}"
    if col.kind in ("signed", "ci"):
        return f"{float(value):+.{col.digits}f}"
    return f"{float(value):.{col.digits}f}"


def to_latex(spec: TableSpec, *, size: str = r"\footnotesize", placement: str | None = None) -> str:
    """The table as a LaTeX float (booktabs, siunitx ``S`` columns).

    Tables of more than ten columns are ``table*`` (full width in a two-column paper).
    """
    colspec, top, sub, rules = [], [], [], []
    position = 1
    for k, col in enumerate(spec.columns):
        values = [row[k] for row in spec.rows]
        if col.kind in ("text", "code"):
            colspec.append("l")
            top.append(col.latex)
            sub.append("")
            position += 1
        elif col.kind == "ci":
            fmt_ = _s_format(col, values)
            colspec += [f"S[table-format={fmt_}]"] * 2
            top.append(rf"\multicolumn{{2}}{{c}}{{{col.latex}}}")
            sub += ["{lower}", "{upper}"]
            rules.append(rf"\cmidrule(lr){{{position}-{position + 1}}}")
            position += 2
        else:
            extra = ",group-digits=integer,group-minimum-digits=4" if col.kind == "int" else ""
            colspec.append(f"S[table-format={_s_format(col, values)}{extra}]")
            top.append("{" + col.latex + "}")
            sub.append("")
            position += 1
    body = []
    for row in spec.rows:
        cells = []
        for col, value in zip(spec.columns, row):
            if col.kind == "text":
                cells.append(latex_escape(value))
            elif col.kind == "code":
                cells.append(rf"\texttt{{{latex_escape(value)}}}")
            elif col.kind == "ci":
                cells += [_tex_number(col, value[0]), _tex_number(col, value[1])]
            else:
                cells.append(_tex_number(col, value))
        body.append(" & ".join(cells) + r" \\")
    caption = spec.latex_caption or latex_escape(spec.caption)
    env = "table*" if len(colspec) > 10 else "table"
    placement = placement or ("tbp" if env == "table*" else "htbp")  # a table* float cannot go [h]ere
    lines = [
        r"% layergain table; needs \usepackage{booktabs} and \usepackage{siunitx}",
        f"\\begin{{{env}}}[{placement}]",
        r"\centering",
        size,
        r"\setlength{\tabcolsep}{3pt}",
        rf"\caption{{{caption}}}",
        rf"\label{{{spec.label}}}",
        r"\begin{tabular}{" + "".join(colspec) + "}",
        r"\toprule",
        " & ".join(top) + r" \\",
    ]
    if rules:
        lines += [" ".join(rules), " & ".join(sub) + r" \\"]
    lines += [r"\midrule", *body, r"\bottomrule", r"\end{tabular}"]
    notes = spec.latex_notes or (latex_escape(spec.notes) if spec.notes else "")
    if notes:
        lines += [r"\par\smallskip", rf"\parbox{{\linewidth}}{{\scriptsize {notes}}}"]
    lines.append(rf"\end{{{env}}}")
    return "\n".join(lines) + "\n"


def standalone(inputs: list[str]) -> str:
    """A minimal document that ``\\input``s table files: ``pdflatex tables.tex`` previews them."""
    body = "\n\\clearpage\n".join(rf"\input{{{name}}}" for name in inputs)
    return (
        "% Preview of the tables: pdflatex tables.tex (needs booktabs and siunitx)\n"
        "\\documentclass[10pt]{article}\n"
        "\\usepackage[T1]{fontenc}\n"
        "\\usepackage[a4paper,landscape,margin=1.5cm]{geometry}\n"
        "\\usepackage{booktabs}\n"
        "\\usepackage{siunitx}\n"
        "\\begin{document}\n"
        f"{body}\n"
        "\\end{document}\n"
    )


def write_latex(specs: dict[str, TableSpec], folder: Path) -> list[Path]:
    """``folder/<name>.tex`` per table and ``folder/tables.tex`` that inputs them all."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, spec in specs.items():
        path = folder / f"{name}.tex"
        path.write_text(to_latex(spec), encoding="utf-8")
        files.append(path)
    preview = folder / "tables.tex"
    preview.write_text(standalone(list(specs)), encoding="utf-8")
    return files + [preview]
