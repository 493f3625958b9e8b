"""Per-layer transferability estimators: how well a layer's features suit the labels, without a probe.

- :func:`logme`, :func:`hscore`, :func:`nleep`, :func:`gbc`, :func:`transrate`: from features and labels
- :func:`knn_accuracy`, :func:`ncc_accuracy`: cross-validated on the run's folds
- :func:`study_transferability`: every estimator for every (network, layer) of a run
- :func:`tau_table`: Kendall's tau across layers against the probe accuracy and the gain
"""

from __future__ import annotations

from layergain.transferability.estimators import gbc, hscore, ledoit_wolf_shrinkage, logme, nleep, transrate
from layergain.transferability.neighbours import knn_accuracy, ncc_accuracy
from layergain.transferability.study import ESTIMATOR, ESTIMATORS, study_transferability, tau_table

__all__ = [
    "ESTIMATOR",
    "ESTIMATORS",
    "gbc",
    "hscore",
    "knn_accuracy",
    "ledoit_wolf_shrinkage",
    "logme",
    "ncc_accuracy",
    "nleep",
    "study_transferability",
    "tau_table",
    "transrate",
]
