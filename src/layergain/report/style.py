"""One figure style for every report: readable in greyscale, print-sized, labelled."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["figure", "save", "PRETRAINED", "RANDOM", "REFERENCE", "layer_axis"]

# Colour-blind-safe (Okabe-Ito) and told apart in greyscale by line style and marker too.
PRETRAINED = {"color": "#0072B2", "linestyle": "-", "marker": "o", "markersize": 4, "linewidth": 1.8}
RANDOM = {"color": "#D55E00", "linestyle": "--", "marker": "s", "markersize": 3.5, "linewidth": 1.5}
REFERENCE = {"color": "0.35", "linestyle": ":", "linewidth": 1.2}

_RC = {
    "figure.dpi": 150,
    "savefig.dpi": 200,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "0.88",
    "grid.linewidth": 0.6,
    "pdf.fonttype": 42,
    "svg.hashsalt": "layergain",
}


@contextmanager
def figure(width: float = 6.4, height: float = 3.4):
    with plt.rc_context(_RC):
        fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
        try:
            yield fig, ax
        finally:
            plt.close(fig)


def save(fig, base: Path) -> list[Path]:
    """Save ``base.png`` and ``base.pdf``; PDF metadata without dates so reruns are identical."""
    base.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = base.with_suffix(".png"), base.with_suffix(".pdf")
    fig.savefig(png, metadata={"Software": None})
    fig.savefig(pdf, metadata={"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None})
    return [png, pdf]


def layer_axis(ax, names: list[str]) -> None:
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=60, ha="right", rotation_mode="anchor")
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_xlabel("probe layer (shallow → deep)")
