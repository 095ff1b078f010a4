"""Preflight gates: the real kubectl against loopback API servers (tests/helpers/kube_api.py).

The deprecated-API gate reads every kube-apiserver: the "cluster" server answers
the kubeconfig and lists the kube-apiserver pods; each pod's kubeadm endpoint
annotation names one loopback server, whose /metrics only that server knows.
"""
from __future__ import annotations

import pytest

from kubehop.gates import cli
from kubehop.gates.preflight import ENDPOINT_ANNOTATION, apiserver_endpoints, blocking_budgets, deprecated_requests

METRICS = """# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 1234
# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested
# TYPE apiserver_requested_deprecated_apis gauge
apiserver_requested_deprecated_apis{group="storage.k8s.io",removed_release="1.27",resource="csistoragecapacities",subresource="",version="v1beta1"} 1
apiserver_requested_deprecated_apis{group="flowcontrol.apiserver.k8s.io",removed_release="1.29",resource="flowschemas",subresource="",version="v1beta2"} 1
"""


def pdb(ns: str, name: str, expected: int, allowed: int, healthy: int, desired: int) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": ns, "uid": f"{ns}-{name}", "resourceVersion": "1"},
            "spec": {"minAvailable": desired, "selector": {"matchLabels": {"app": name}}},
            "status": {"currentHealthy": healthy, "desiredHealthy": desired, "disruptionsAllowed": allowed,
                       "expectedPods": expected, "observedGeneration": 1}}


CLEAN = METRICS.split("# HELP apiserver_requested_deprecated_apis")[0]


def apiserver_pod(node: str, endpoint: str | None) -> dict:
    """A kube-apiserver mirror pod as kubeadm's static pod shows in the API (labels and annotation
    from cmd/kubeadm/app/phases/controlplane/manifests.go)."""
    annotations = {ENDPOINT_ANNOTATION: endpoint} if endpoint else {}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"kube-apiserver-{node}", "namespace": "kube-system", "annotations": annotations,
                         "labels": {"component": "kube-apiserver", "tier": "control-plane"}},
            "spec": {"nodeName": node, "hostNetwork": True, "containers": [{"name": "kube-apiserver"}]},
            "status": {"phase": "Running"}}


@pytest.fixture
def masters(kube_api):
    """(the load-balanced cluster endpoint, the three masters' apiservers), all clean."""
    lb = kube_api("cluster")
    servers = [kube_api(f"master{i}") for i in range(3)]
    lb.load(*[apiserver_pod(f"master{i}", api.url.split("//")[1]) for i, api in enumerate(servers)])
    for api in [lb, *servers]:
        api.raw["/metrics"] = ("text/plain; version=0.0.4", CLEAN)
    lb.load(pdb("prod", "web", 3, 1, 3, 2))
    return lb, servers


def gate(capsys, lb, *argv: str) -> tuple[int, str]:
    code = cli.main([*argv, "--kubeconfig", str(lb.kubeconfig), "--timeout", "0", "--interval", "0"])
    return code, capsys.readouterr().err


def test_deprecated_requests_are_found_per_release():
    assert deprecated_requests(METRICS, "1.27") == ["storage.k8s.io/v1beta1 csistoragecapacities"]
    assert deprecated_requests(METRICS, "1.29") == ["flowcontrol.apiserver.k8s.io/v1beta2 flowschemas"]
    assert deprecated_requests(METRICS, "1.28") == []


def test_a_request_served_by_one_master_only_is_found(masters, capsys):
    lb, servers = masters
    servers[2].raw["/metrics"] = ("text/plain; version=0.0.4", METRICS)
    code, err = gate(capsys, lb, "deprecated-apis", "--removed-in", "1.27", "--apiservers", "3")
    assert code == 1, err
    endpoint = servers[2].url.split("//")[1]
    assert f"storage.k8s.io/v1beta1 csistoragecapacities (at {endpoint})" in err
    assert [r.path for r in lb.calls(path="/metrics")] == []  # the load balancer's pick is not what is read
    assert all(api.calls(path="/metrics") for api in servers)
    code, err = gate(capsys, lb, "deprecated-apis", "--removed-in", "1.28", "--apiservers", "3")
    assert code == 0, err
    assert "on any of 3 kube-apiservers" in err


def test_fewer_apiservers_than_masters_fails(masters, capsys):
    lb, servers = masters
    lb.edit("Pod", "kube-apiserver-master1", "kube-system", lambda pod: pod["metadata"].update(annotations={}))
    code, err = gate(capsys, lb, "deprecated-apis", "--removed-in", "1.28", "--apiservers", "3")
    assert code == 1
    assert "found 2 kube-apiserver endpoint(s)" in err and "expected 3" in err and "kube-apiserver-master1" in err


def test_an_unreachable_apiserver_fails_closed(masters, capsys):
    lb, servers = masters
    endpoint = servers[1].url.split("//")[1]
    servers[1].stop()
    code, err = gate(capsys, lb, "deprecated-apis", "--removed-in", "1.28", "--apiservers", "3")
    assert code == 1 and f"cannot read /metrics of the kube-apiserver at {endpoint}" in err


def test_a_page_that_is_not_an_apiservers_metrics_fails_closed(masters, capsys):
    lb, servers = masters
    servers[0].raw["/metrics"] = ("text/plain", "# not an apiserver\nup 1\n")
    code, err = gate(capsys, lb, "deprecated-apis", "--removed-in", "1.28", "--apiservers", "3")
    assert code == 1 and "not a kube-apiserver" in err


def test_an_endpoint_annotation_is_checked_before_it_reaches_kubectl():
    pods = [apiserver_pod("a", "10.0.0.10:6443"), apiserver_pod("b", "[fd00::10]:6443"),
            apiserver_pod("c", "--kubeconfig=/x:1"), apiserver_pod("d", "10.0.0.12:6443 --insecure"), apiserver_pod("e", None)]
    assert apiserver_endpoints(pods) == (["10.0.0.10:6443", "[fd00::10]:6443"],
                                         ["kube-apiserver-c", "kube-apiserver-d", "kube-apiserver-e"])


@pytest.mark.parametrize("argv", [["--removed-in", "v1.27.3"], ["--removed-in", "1.27", "--apiservers", "0"]])
def test_bad_arguments_exit_2(argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(["deprecated-apis", *argv])
    assert exc.value.code == 2


def test_blocking_budgets():
    pdbs = [pdb("prod", "web", 3, 1, 3, 2), pdb("prod", "mysql", 1, 0, 1, 1), pdb("prod", "idle", 0, 0, 0, 1)]
    assert blocking_budgets(pdbs, set()) == ["prod/mysql (healthy 1/1, 0 disruptions allowed)"]
    assert blocking_budgets(pdbs, {"prod/mysql"}) == []


def test_pdbs_gate(masters, capsys):
    lb, _ = masters
    code, err = gate(capsys, lb, "pdbs")
    assert code == 0, err
    lb.load(pdb("prod", "kafka", 3, 0, 3, 3))
    code, err = gate(capsys, lb, "pdbs")
    assert code == 1 and "prod/kafka" in err and "prod/web" not in err.split("FAILED")[-1]
    code, err = gate(capsys, lb, "pdbs", "--ignore", "prod/kafka")
    assert code == 0, err
    lb.stop()
    code, err = gate(capsys, lb, "pdbs")
    assert code == 1
