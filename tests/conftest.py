"""Shared fixtures, and the ``slow`` marker of tests that run the whole pipeline.

``pytest -m "not slow"`` is the fast loop of a developer; CI runs everything.
"""

import pytest

#: Fixtures that run the whole pipeline (a real run on real images): a test that uses one, directly
#: or through another fixture, is marked slow.
PIPELINE_FIXTURES = frozenset({"small_run", "kather_run", "comparison_run"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(params=[0, 1, 2])
def seed(request: pytest.FixtureRequest) -> int:
    """A seed for tests that must pass for any seed (scikit-learn's global_random_seed idea)."""
    return request.param
