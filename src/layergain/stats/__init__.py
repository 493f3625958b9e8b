"""Statistics of the knowledge gain: intervals, tests, corrections, effect sizes, trend, sweet spot.

Pure functions on numpy arrays (no torch). Inputs follow the probes stage's contract (see
:mod:`layergain.stats._inputs`): boolean correctness ``correct_pre`` (n_repeats, n_images) and
``correct_rand`` (n_seeds, n_repeats, n_images), optionally with a leading layer axis; ``labels``,
``groups`` and ``folds``. Outputs always carry a leading layer axis.
"""

from layergain.stats.bootstrap import (
    GainBootstrap,
    Influence,
    bootstrap_gain,
    bootstrap_interval,
    bootstrap_pvalue,
)
from layergain.stats.compare import (
    InteractionTest,
    ProbeOutcomes,
    SetComparison,
    compare_sets,
    interaction_test,
)
from layergain.stats.effect import GainEffectSizes, cohen_h, gain_effect_sizes
from layergain.stats.multiple import adjust_pvalues
from layergain.stats.sweetspot import SweetSpot, sweet_spot
from layergain.stats.tests import (
    CorrectedTTestResult,
    McNemarResult,
    SignFlipResult,
    corrected_resampled_ttest,
    mcnemar_tests,
    per_image_differences,
    sign_flip_test,
)
from layergain.stats.study import gain_statistics, sweet_spot_noninferior
from layergain.stats.trend import DepthTrend, depth_trend

__all__ = [
    "CorrectedTTestResult",
    "DepthTrend",
    "GainBootstrap",
    "GainEffectSizes",
    "Influence",
    "InteractionTest",
    "McNemarResult",
    "ProbeOutcomes",
    "SetComparison",
    "SignFlipResult",
    "SweetSpot",
    "adjust_pvalues",
    "bootstrap_gain",
    "bootstrap_interval",
    "bootstrap_pvalue",
    "cohen_h",
    "compare_sets",
    "corrected_resampled_ttest",
    "depth_trend",
    "gain_effect_sizes",
    "gain_statistics",
    "interaction_test",
    "mcnemar_tests",
    "per_image_differences",
    "sign_flip_test",
    "sweet_spot",
]
