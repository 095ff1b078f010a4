"""Fixtures the gate tests share."""
from __future__ import annotations

import pytest

from tests.gates.test_cutover import Cluster
from tests.gates.test_traffic_canary import DappServer
from tests.helpers import moto_server


@pytest.fixture
def dapp():
    """The DAPP state endpoint on 127.0.0.1, stopped after the test."""
    server = DappServer()
    yield server
    server.close()


@pytest.fixture
def cluster(kube_api, tmp_path, capsys):
    """Two loopback clusters (west-a, west-b) and the gate CLI with a real kubectl (tests/gates/test_cutover.py)."""
    c = Cluster(kube_api, tmp_path)
    c.capsys = capsys
    return c


@pytest.fixture
def ssm():
    """moto's SSM on 127.0.0.1; the gates' boto3 reaches it through AWS_ENDPOINT_URL_SSM."""
    import boto3

    with moto_server.moto_server(AWS_ENDPOINT_URL_SSM="{url}") as url:
        yield boto3.client("ssm", region_name=moto_server.REGION, endpoint_url=url)
