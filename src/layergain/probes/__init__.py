"""Linear probes: cross-validation folds and out-of-fold predictions."""

from layergain.probes.folds import check_foldable, make_folds
from layergain.probes.linear import ProbeResult, ProbeSettings, cross_val_probe
from layergain.probes.metrics import classification_metrics, confusion
from layergain.probes.study import StudyProbes, probe_study

__all__ = [
    "ProbeResult",
    "ProbeSettings",
    "StudyProbes",
    "check_foldable",
    "classification_metrics",
    "confusion",
    "cross_val_probe",
    "make_folds",
    "probe_study",
]
