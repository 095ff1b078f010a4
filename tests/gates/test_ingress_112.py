"""The ingress-1.12 preflight lists what controller-v1.12.0 refuses, as its sources say
(kubernetes/ingress-nginx at tag controller-v1.12.0: inspector/rules.go validPathType,
inspector.go ValidatePathType, the Critical-risk annotations, allow-cross-namespace-resources
off), and runs with the real kubectl against the loopback API server."""
from __future__ import annotations

import pytest

from kubehop.gates import cli
from kubehop.gates.addon_steps import ingress_breaks
from tests.helpers.kube_api import KUBECTL_MINORS, Resource, kubectl_binary


def ing(path="/api", kind="Prefix", namespace="prod", **annotations) -> dict:
    return {"kind": "Ingress", "apiVersion": "networking.k8s.io/v1",
            "metadata": {"namespace": namespace, "name": "api",
                         "annotations": {f"nginx.ingress.kubernetes.io/{k.replace('_', '-')}": v for k, v in annotations.items()}},
            "spec": {"rules": [{"http": {"paths": [{"path": path, "pathType": kind,
                                                     "backend": {"service": {"name": "api", "port": {"number": 80}}}}]}}]}}


@pytest.mark.parametrize("path,kind,breaks", [
    ("/api/v1", "Prefix", False), ("/a_b-c/", "Exact", False), ("", "Prefix", False),
    ("/api/v1.0", "Prefix", True),          # a dot: validPathType allows alnum, _, - and / only
    ("/static/app.js", "Exact", True),
    ("/api(/|$)(.*)", "Prefix", True),
    ("/api(/|$)(.*)", "ImplementationSpecific", False),
    ("/api/v1.0", None, True),              # no pathType is validated too (pathType == nil)
])
def test_paths_as_strict_path_validation_judges_them(path, kind, breaks):
    assert bool(ingress_breaks(ing(path, kind))) is breaks


@pytest.mark.parametrize("annotation", ["configuration-snippet", "server-snippet", "stream-snippet", "auth-snippet",
                                        "modsecurity-snippet", "global-rate-limit", "global-rate-limit-key"])
def test_critical_and_removed_annotations(annotation):
    assert annotation in ingress_breaks(ing(**{annotation: "x"}))[0]


@pytest.mark.parametrize("annotation", ["auth-secret", "auth-tls-secret", "auth-proxy-set-headers",
                                        "fastcgi-params-configmap", "proxy-ssl-secret"])
def test_cross_namespace_references(annotation):
    assert "names namespace shared" in ingress_breaks(ing(**{annotation: "shared/creds"}))[0]
    assert ingress_breaks(ing(**{annotation: "prod/creds"})) == []
    assert ingress_breaks(ing(**{annotation: "creds"})) == []


@pytest.mark.skipif(not KUBECTL_MINORS, reason="no kubectl.1.NN")
@pytest.mark.parametrize("minor", sorted({KUBECTL_MINORS[0], KUBECTL_MINORS[-1]}))
def test_the_preflight_with_the_real_kubectl(kube_api, capsys, minor):
    api = kube_api("prod-b", minor=29)
    api.add_resource(Resource("ingresses", "Ingress", "networking.k8s.io", short=("ing",)))
    api.load(ing("/grafana", namespace="monitoring"), {**ing("/api/v1.0"), "metadata": {"namespace": "prod", "name": "v1"}})
    argv = ["ingress-1.12", "--kubectl", kubectl_binary(minor), "--kubeconfig", str(api.kubeconfig)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "prod/v1: path '/api/v1.0' (Prefix) is not a plain path" in err and "monitoring" not in err
    api.remove("Ingress", "v1", "prod")
    assert cli.main(argv) == 0
    assert api.calls("GET", "/apis/networking.k8s.io/v1/ingresses")
