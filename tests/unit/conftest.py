"""Shared fixtures: a session-wide cluster CA (key generation is the slow part)."""
from __future__ import annotations

import os

import pytest

import pkifactory


@pytest.fixture(scope="session")
def cluster_ca() -> pkifactory.CA:
    return pkifactory.make_ca("kubernetes")


@pytest.fixture(scope="session")
def other_ca() -> pkifactory.CA:
    return pkifactory.make_ca("some-other-ca")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_root: the test gives a file another owner (os.chown), "
                                       "which only root may do; skipped for other users")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_root") and os.geteuid() != 0:
        pytest.skip("needs root: the test gives a file another owner (os.chown)")
