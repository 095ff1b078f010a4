"""Fixtures the gate tests share."""
from __future__ import annotations

import pytest

from tests.gates.test_traffic_canary import DappServer


@pytest.fixture
def dapp():
    """The DAPP state endpoint on 127.0.0.1, stopped after the test."""
    server = DappServer()
    yield server
    server.close()
