"""Shared fixtures."""

import pytest


@pytest.fixture(params=[0, 1, 2])
def seed(request: pytest.FixtureRequest) -> int:
    """A seed for tests that must pass for any seed (scikit-learn's global_random_seed idea)."""
    return request.param
