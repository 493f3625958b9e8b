"""A structural check of the LaTeX tables, for machines without a TeX engine.

It checks what makes pdfLaTeX with booktabs and siunitx fail or misalign: unbalanced braces or
environments, a row with the wrong number of cells, an ``S`` cell siunitx cannot parse, a number
wider than its column's ``table-format``, unescaped special characters, non-ASCII text.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"^(?P<cmp><)?(?P<sign>[+-])?(?P<int>\d+)(?:\.(?P<dec>\d+))?$")
_FORMAT = re.compile(r"^(?P<cmp><)?(?P<sign>\+)?(?P<int>\d+)\.(?P<dec>\d+)$")


def _balanced(text: str) -> bool:
    depth = 0
    for match in re.finditer(r"(?<!\\)[{}]", text):
        depth += 1 if match.group() == "{" else -1
        if depth < 0:
            return False
    return depth == 0


def _columns(spec: str) -> list[str | None]:
    """Column types of a tabular spec: None for l/c/r, the table-format for S."""
    out = []
    for match in re.finditer(r"S\[([^\]]*)\]|[lcr]", spec):
        if match.group(1) is None:
            out.append(None)
        else:
            fmt = re.search(r"table-format=([^,\]]+)", match.group(1))
            out.append(fmt.group(1) if fmt else "")
    return out


def _cells(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)&", row.removesuffix(r"\\").strip())]


def _fits(cell: str, table_format: str) -> bool:
    number, fmt = _NUMBER.match(cell), _FORMAT.match(table_format)
    if number is None or fmt is None:
        return False
    if number["cmp"] and not fmt["cmp"]:
        return False
    if number["sign"] and not fmt["sign"]:
        return False
    return len(number["int"]) <= int(fmt["int"]) and len(number["dec"] or "") <= int(fmt["dec"])


def check_table(tex: str) -> list[str]:
    """Problems found in one table file (empty when it is fine)."""
    problems = []
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))
    if not tex.isascii():
        problems.append("non-ASCII characters: " + "".join(sorted({c for c in tex if not c.isascii()})))
    if not _balanced(body):
        problems.append("unbalanced braces")
    envs = re.findall(r"\\(begin|end)\{([^}]+)\}", body)
    stack = []
    for kind, name in envs:
        if kind == "begin":
            stack.append(name)
        elif not stack or stack.pop() != name:
            problems.append(f"\\end{{{name}}} without its \\begin")
    if stack:
        problems.append(f"unclosed environments: {stack}")
    for rule in (r"\toprule", r"\midrule", r"\bottomrule", r"\caption{", r"\label{tab:"):
        if body.count(rule) != 1:
            problems.append(f"{rule} appears {body.count(rule)} times")
    spec = re.search(r"\\begin\{tabular\}\{((?:[^{}]|\{[^{}]*\})*)\}", body)
    if spec is None:
        return problems + ["no tabular"]
    columns = _columns(spec.group(1))
    if not spec.group(1).replace(" ", "") or len(columns) == 0:
        problems.append("empty column spec")
    rows = body.split(r"\midrule", 1)[-1].split(r"\bottomrule", 1)[0].strip().splitlines()
    if not rows:
        problems.append("no data rows")
    for row in rows:
        if not row.rstrip().endswith(r"\\"):
            problems.append(f"row does not end with \\\\: {row[:60]}")
        cells = _cells(row)
        if len(cells) != len(columns):
            problems.append(f"{len(cells)} cells for {len(columns)} columns: {row[:60]}")
            continue
        for cell, fmt in zip(cells, columns):
            if fmt is None:
                if re.search(r"(?<!\\)[%#_&$]", re.sub(r"\$[^$]*\$", "", cell)):
                    problems.append(f"unescaped special character in {cell!r}")
            elif not (cell.startswith("{") and cell.endswith("}")) and not _fits(cell, fmt):
                problems.append(f"S cell {cell!r} does not fit table-format={fmt}")
    head = body.split(r"\toprule", 1)[-1].split(r"\midrule", 1)[0]
    for line in head.strip().splitlines():
        if line.startswith(r"\cmidrule"):
            continue
        position = 0
        for cell in _cells(line):
            span = re.match(r"\\multicolumn\{(\d+)\}", cell)
            if span:
                position += int(span.group(1))
                continue
            if (
                position < len(columns)
                and columns[position] is not None
                and cell
                and not cell.startswith("{")
            ):
                problems.append(f"header cell {cell!r} of an S column is not braced")
            position += 1
        if position != len(columns):
            problems.append(f"header spans {position} columns, not {len(columns)}: {line[:60]}")
    return problems
