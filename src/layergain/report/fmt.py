"""Number formatting, at report time only."""

from __future__ import annotations

import math

__all__ = ["num", "pct", "pval", "ci", "signed"]


def _bad(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def num(x, digits: int = 3) -> str:
    return "n/a" if _bad(float(x)) else f"{float(x):.{digits}f}"


def signed(x, digits: int = 3) -> str:
    return "n/a" if _bad(float(x)) else f"{float(x):+.{digits}f}"


def pct(x, digits: int = 1) -> str:
    return "n/a" if _bad(float(x)) else f"{100 * float(x):.{digits}f} %"


def pval(p) -> str:
    """p-values as in APA style: three decimals, "< 0.001" below."""
    p = float(p)
    if _bad(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def ci(lower, upper, digits: int = 3, sign: bool = True) -> str:
    f = signed if sign else num
    return f"[{f(lower, digits)}, {f(upper, digits)}]"
