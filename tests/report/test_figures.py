"""Figures: every axis labelled, series told apart without colour, reruns byte-identical."""

from __future__ import annotations

import pytest

from layergain.report import compare_figures, figures, style
from layergain.report.summary import summarise_run


def _captured(monkeypatch, module) -> list:
    figs = []

    def keep(fig, base):
        figs.append([(ax.get_label(), ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) for ax in fig.axes])
        return []

    monkeypatch.setattr(module, "save", keep)
    return figs


def _check_labels(axes: list) -> None:
    plots = [a for a in axes if a[0] != "<colorbar>"]
    assert plots and all(y for _, _, y, _ in plots), axes  # every panel says what its y axis is
    assert any(x for _, x, _, _ in plots), axes  # the shared x axis is labelled once
    assert all(y for label, _, y, _ in axes if label == "<colorbar>"), axes  # colour bars too


@pytest.mark.parametrize("name", list(figures.FIGURES))
def test_run_figures_are_labelled(kather_results, monkeypatch, name, tmp_path):
    figs = _captured(monkeypatch, figures)
    figures.FIGURES[name](summarise_run(kather_results), tmp_path / name)
    _check_labels(figs[0])


@pytest.mark.parametrize("name", list(compare_figures.COMPARISON_FIGURES))
def test_comparison_figures_are_labelled(comparison_run, monkeypatch, name, tmp_path):
    from layergain.results.io import load_results

    figs = _captured(monkeypatch, compare_figures)
    compare_figures.COMPARISON_FIGURES[name](
        load_results(comparison_run.out / "comparison.nc"), tmp_path / name
    )
    _check_labels(figs[0])


def test_series_differ_in_greyscale():
    """Line style and marker, not only colour, tell series apart."""
    assert (style.PRETRAINED["linestyle"], style.PRETRAINED["marker"]) != (
        style.RANDOM["linestyle"],
        style.RANDOM["marker"],
    )
    assert style.REFERENCE["linestyle"] not in (style.PRETRAINED["linestyle"], style.RANDOM["linestyle"])
    series = [style.series_style(k) for k in range(7)]
    assert len({str(s["linestyle"]) for s in series}) == 7 and len({s["marker"] for s in series}) == 7


def test_summary_leaves_the_results_untouched(kather_run):
    seeds = kather_run.results.attrs["seeds"]
    summarise_run(kather_run.results)
    assert kather_run.results.attrs["seeds"] is seeds
