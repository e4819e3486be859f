"""Shared fixtures: a session-wide cluster CA (key generation is the slow part)."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import pkifactory  # noqa: E402


@pytest.fixture(scope="session")
def cluster_ca() -> pkifactory.CA:
    return pkifactory.make_ca("kubernetes")


@pytest.fixture(scope="session")
def other_ca() -> pkifactory.CA:
    return pkifactory.make_ca("some-other-ca")
