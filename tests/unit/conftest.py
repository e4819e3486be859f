"""Shared fixtures: a session-wide cluster CA (key generation is the slow part) and the fake API."""
from __future__ import annotations

import os
import pathlib
import typing as t

import pytest

import pkifactory
from fake_api import FakeApi


@pytest.fixture(scope="session")
def cluster_ca() -> pkifactory.CA:
    return pkifactory.make_ca("kubernetes")


@pytest.fixture(scope="session")
def other_ca() -> pkifactory.CA:
    return pkifactory.make_ca("some-other-ca")


@pytest.fixture
def fake_api(tmp_path: pathlib.Path, cluster_ca: pkifactory.CA) -> t.Iterator[FakeApi]:
    """The one fake Kubernetes API, serving on an ephemeral loopback port for the test's duration."""
    with FakeApi(str(tmp_path), cluster_ca) as api:
        yield api


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_root: the test gives a file another owner (os.chown), "
                                       "which only root may do; skipped for other users")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_root") and os.geteuid() != 0:
        pytest.skip("needs root: the test gives a file another owner (os.chown)")
