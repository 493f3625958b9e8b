"""Number formatting, at report time only (results keep full precision).

Every formatter returns ``"n/a"`` for a missing value (None or NaN) so that a NaN never reaches a
report as ``nan``. Signs use the ASCII hyphen-minus, which survives copying into any editor or
spreadsheet; LaTeX output goes through :mod:`layergain.report.tables` instead.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "NA",
    "ci",
    "count",
    "est_ci",
    "layer_runs",
    "level",
    "missing",
    "num",
    "params",
    "pct",
    "plural",
    "pval",
    "signed",
]

NA = "n/a"


def missing(x) -> bool:
    """True for None and NaN (any float-like)."""
    if x is None:
        return True
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def num(x, digits: int = 3) -> str:
    return NA if missing(x) else f"{float(x):.{digits}f}"


def signed(x, digits: int = 3) -> str:
    return NA if missing(x) else f"{float(x):+.{digits}f}"


def pct(x, digits: int = 1) -> str:
    return NA if missing(x) else f"{100 * float(x):.{digits}f} %"


def pval(p) -> str:
    """p-values as in APA style: three decimals, ``< 0.001`` below."""
    if missing(p):
        return NA
    p = float(p)
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_is(p) -> str:
    """A p-value inside a sentence: ``p = 0.012`` or ``p < 0.001``."""
    text = pval(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def ci(lower, upper, digits: int = 3, sign: bool = True) -> str:
    f = signed if sign else num
    return f"[{f(lower, digits)}, {f(upper, digits)}]"


def est_ci(estimate, lower, upper, digits: int = 3, sign: bool = True) -> str:
    """``+0.125 [+0.050, +0.200]``."""
    f = signed if sign else num
    return f"{f(estimate, digits)} {ci(lower, upper, digits, sign)}"


def count(n) -> str:
    """Integers with thousands separators: ``1,234,567``."""
    return NA if missing(n) else f"{int(n):,}"


def params(n) -> str:
    """Parameter counts for prose: ``928``, ``87.6 k``, ``3.37 M``."""
    if missing(n):
        return NA
    n = int(n)
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1e3:.1f} k"
    return f"{n / 1e6:.2f} M"


def level(confidence) -> str:
    """``0.95`` -> ``95 %``."""
    return f"{100 * float(confidence):g} %"


def plural(n: int, word: str) -> str:
    """``1 layer``, ``3 layers``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def layer_runs(names: list[str], mask) -> str:
    """Selected layers as runs of neighbours: ```a`–`c`, `e` and `g```."""
    idx = np.flatnonzero(np.asarray(mask, dtype=bool))
    runs: list[list[int]] = []
    for j in idx:
        if runs and j == runs[-1][-1] + 1:
            runs[-1].append(j)
        else:
            runs.append([j])
    parts = [f"`{names[r[0]]}`" if len(r) == 1 else f"`{names[r[0]]}`–`{names[r[-1]]}`" for r in runs]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
