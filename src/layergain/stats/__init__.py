"""Statistics of the knowledge gain: intervals, tests, corrections, effect sizes, trend, sweet spot.

Pure functions on numpy arrays (no torch). Inputs follow the probes stage's contract (see
:mod:`layergain.stats._inputs`): boolean correctness ``correct_pre`` (n_repeats, n_images) and
``correct_rand`` (n_seeds, n_repeats, n_images), optionally with a leading layer axis; ``labels``,
``groups`` and ``folds``. :func:`gain_statistics` gives a run's statistics as an xarray Dataset;
:mod:`layergain.stats.components` holds the variance components they all rest on.
"""

from layergain.stats.backbones import BackboneComparison, compare_backbones
from layergain.stats.compare import (
    InteractionTest,
    ProbeOutcomes,
    SetComparison,
    compare_sets,
    interaction_test,
)
from layergain.stats.configurations import ConfigurationComparison, compare_configurations
from layergain.stats.effect import GainEffectSizes, cohen_h, gain_effect_sizes
from layergain.stats.multiple import adjust_pvalues
from layergain.stats.study import gain_statistics
from layergain.stats.sweetspot import SweetSpot, sweet_spot
from layergain.stats.tests import (
    CorrectedTTestResult,
    McNemarResult,
    corrected_resampled_ttest,
    mcnemar_tests,
    per_image_differences,
)

__all__ = [
    "BackboneComparison",
    "ConfigurationComparison",
    "CorrectedTTestResult",
    "GainEffectSizes",
    "InteractionTest",
    "McNemarResult",
    "ProbeOutcomes",
    "SetComparison",
    "SweetSpot",
    "adjust_pvalues",
    "cohen_h",
    "compare_backbones",
    "compare_configurations",
    "compare_sets",
    "corrected_resampled_ttest",
    "gain_effect_sizes",
    "gain_statistics",
    "interaction_test",
    "mcnemar_tests",
    "per_image_differences",
    "sweet_spot",
]
