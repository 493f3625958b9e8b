"""One figure style for every report: print-sized, labelled, readable in greyscale.

Series differ by colour (Okabe-Ito, colour-blind safe) *and* by line style and marker, so a
greyscale print keeps them apart; heatmaps use cividis, whose lightness rises monotonically.
Files are byte-identical across reruns: no dates or software versions in PNG or PDF metadata.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

__all__ = [
    "FULL_WIDTH",
    "GAIN",
    "HEATMAP",
    "NOT_SIGNIFICANT",
    "PRETRAINED",
    "RANDOM",
    "REFERENCE",
    "REFERENCE_BAND",
    "SIGNIFICANT",
    "band",
    "figure",
    "layer_axis",
    "save",
    "series_style",
]

#: Width of a full-width figure in inches (a two-column paper's text width is about 7 in).
FULL_WIDTH = 6.4

PRETRAINED = {"color": "#0072B2", "linestyle": "-", "marker": "o", "markersize": 4, "linewidth": 1.8}
RANDOM = {"color": "#D55E00", "linestyle": "--", "marker": "s", "markersize": 3.5, "linewidth": 1.5}
REFERENCE = {"color": "0.35", "linestyle": ":", "linewidth": 1.2}
REFERENCE_BAND = {"color": "0.55", "alpha": 0.22, "linewidth": 0, "hatch": "////", "edgecolor": "0.45"}
GAIN = {"color": "#0072B2", "linestyle": "-", "linewidth": 1.8}
SIGNIFICANT = {"marker": "*", "markersize": 10, "color": "#000000", "linestyle": "none"}
NOT_SIGNIFICANT = {
    "marker": "o",
    "markersize": 4.5,
    "markerfacecolor": "white",
    "color": "#0072B2",
    "linestyle": "none",
}
HEATMAP = "cividis"

# Several series on one axis (image sets): colour, line style and marker all change together.
_SERIES = [
    ("#0072B2", "-", "o"),
    ("#D55E00", "--", "s"),
    ("#009E73", "-.", "^"),
    ("#CC79A7", ":", "D"),
    ("#E69F00", (0, (5, 1, 1, 1)), "v"),
    ("#56B4E9", (0, (1, 1)), "P"),
    ("#000000", (0, (3, 1, 1, 1, 1, 1)), "X"),
]

_RC = {
    "figure.dpi": 150,
    "savefig.dpi": 200,
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "0.88",
    "grid.linewidth": 0.6,
    "hatch.linewidth": 0.4,
    "pdf.fonttype": 42,
    "svg.hashsalt": "layergain",
    "path.simplify": False,
}


def series_style(k: int) -> dict:
    """Style of the ``k``-th of several series (cycles after seven)."""
    color, line, marker = _SERIES[k % len(_SERIES)]
    return {"color": color, "linestyle": line, "marker": marker, "markersize": 4, "linewidth": 1.5}


@contextmanager
def figure(width: float = FULL_WIDTH, height: float = 3.4, nrows: int = 1, ncols: int = 1, **kwargs):
    """A constrained-layout figure in the report style; yields ``(fig, axes)`` (one Axes if 1 × 1)."""
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained", **kwargs)
        try:
            yield fig, ax
        finally:
            plt.close(fig)


def save(fig, base: Path) -> list[Path]:
    """Save ``base.png`` and ``base.pdf`` without dates or versions in their metadata."""
    base = Path(base)
    base.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = base.with_suffix(".png"), base.with_suffix(".pdf")
    with plt.rc_context(_RC):
        fig.savefig(png, metadata={"Software": None})
        fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})
    return [png, pdf]


def layer_axis(ax, names: list[str], label: bool = True) -> None:
    """Probe layers along x, shallow to deep, names slanted."""
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.5, len(names) - 0.5)
    if label:
        ax.set_xlabel("probe layer (shallow → deep)")


def band(ax, x, low, high, **style) -> None:
    """A shaded band between ``low`` and ``high`` (gaps where either is NaN)."""
    ax.fill_between(x, low, high, **{"linewidth": 0, **style})
