"""Fixtures of the statistics tests."""

import gc

import pytest


@pytest.fixture(autouse=True, scope="package")
def _frozen_gc():
    """Freeze the objects that exist after collection so that gc.collect() is cheap.

    statsmodels' ``multipletests(method="holm")`` calls ``gc.collect()`` on every call; with the
    test session's heap that costs ~0.15 s a call, which the calibration simulations (hundreds of
    Holm corrections) cannot afford. Freezing changes no result.
    """
    gc.freeze()
    yield
    gc.unfreeze()
