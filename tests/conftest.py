"""Shared fixtures: `kube_api` starts loopback Kubernetes API servers (tests/helpers/kube_api.py)."""
from __future__ import annotations

import pytest

from tests.helpers.kube_api import KubeAPI, kubectl_env


@pytest.fixture
def kube_api(tmp_path, monkeypatch):
    """kube_api(name, minor=29) -> a started KubeAPI; all are stopped after the test.
    kubectl run by the code under test gets no proxy and a discovery cache in tmp_path."""
    for key, value in kubectl_env(tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy", "KUBECONFIG"):
        monkeypatch.delenv(var, raising=False)
    started: list[KubeAPI] = []

    def make(name: str = "cluster", minor: int = 29, **kw) -> KubeAPI:
        api = KubeAPI(name, tmp_path / "kube" / name, minor=minor, **kw).start()
        started.append(api)
        return api

    yield make
    for api in started:
        api.stop()
