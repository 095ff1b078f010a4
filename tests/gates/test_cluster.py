"""Cluster gates (nodes, pods, endpoints, network): the real kubectl against a loopback API server.

Every request a gate makes reaches tests/helpers/kube_api.py, which answers the way the
upstream API server does (selectors, List encoding, exec over WebSocket v5) and records it.
Cluster states come from the kubectl-shaped fixtures in tests/fixtures/kubectl/.
"""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kubehop.gates import cli
from tests.helpers.kube_api import KUBECTL_MINORS, ApiError, kubectl_binary

pytestmark = pytest.mark.skipif(not KUBECTL_MINORS, reason="no kubectl.1.NN (scripts/install-test-deps.sh says how)")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubectl"
ONE_LOOK = ["--timeout", "0", "--interval", "0"]
CA_POD = "kube-system/cluster-autoscaler-aws-cluster-autoscaler-7c9d8b5f6-q2w8e"
CHI = "chi-clickhouse-prod-0-0-0"
HEALTHY = ["nodes_healthy.json", "pods_healthy.json", "pods_netprobe.json", f"pod_prod_{CHI}.json",
           "pod_prod_dcluster-mysql-0.json", "endpoints_prod_mysql.json", "endpoints_prod_dcluster-api-public.json"]
EXEC_MINORS = [m for m in KUBECTL_MINORS if m >= 30]  # WebSocket exec (KEP-4006) from kubectl 1.30


def fixture(name: str, edit=None) -> dict:
    data = json.loads((FIXTURES / name).read_text())
    if edit:
        edit(data)
    return data


class Cluster:
    """One loopback cluster in a healthy state, and the gate CLI pointed at it with a real kubectl."""

    def __init__(self, api, capsys, minor: int | None = None):
        self.api, self.capsys = api, capsys
        self.kubectl = kubectl_binary(minor)
        self.failing: dict[str, tuple[int, str]] = {}  # probe address -> (exit code, stderr)
        api.load(*(fixture(name) for name in HEALTHY))
        api.exec_handler = self._exec

    def _exec(self, ns, pod, container, command):
        for address, (code, err) in self.failing.items():
            if address in command:
                return code, "", err
        return 0, "", ""

    def argv(self, *argv: str) -> list[str]:
        return [*argv, "--kubectl", self.kubectl, "--kubeconfig", str(self.api.kubeconfig)]

    def gate(self, *argv: str) -> tuple[int, str]:
        code = cli.main([*self.argv(*argv), *ONE_LOOK])
        return code, self.capsys.readouterr().err


@pytest.fixture
def cluster(kube_api, capsys):
    """A v1.30 API server and kubectl 1.30: the oldest pair whose exec speaks WebSocket (KEP-4006).
    (`kubectl` on PATH may be a dispatcher that picks the client by the server's minor.)"""
    return Cluster(kube_api("prod-b", minor=30), capsys, 30)


def final_line(err: str) -> str:
    return err.strip().splitlines()[-1]


# --- nodes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_nodes_pass_with_every_kubectl(kube_api, capsys, minor):
    c = Cluster(kube_api("prod-b", minor=minor), capsys, minor)
    code, err = c.gate("nodes", "--control-plane-version", "v1.27.16", "--worker-version", "v1.27.16")
    assert code == 0, err
    assert "6 nodes Ready (3 control-plane, 3 worker)" in final_line(err)
    (listed,) = c.api.calls()
    # --request-timeout 30 (the gate's default) reaches the server as the request's timeout
    assert (listed.method, listed.path, listed.query) == ("GET", "/api/v1/nodes", {"limit": "500", "timeout": "30s"})


def test_nodes_kubeconfig_and_context_pick_the_cluster(kube_api, capsys):
    """Only the cluster the kubeconfig names is asked; --context picks a context inside it."""
    here, other = Cluster(kube_api("prod-b"), capsys), kube_api("prod-a")
    code, err = here.gate("nodes", "--context", "prod-b")
    assert code == 0, err
    assert here.api.calls("GET", "/api/v1/nodes") and other.calls() == []
    code, err = here.gate("nodes", "--context", "prod-a")
    assert code == 1 and 'context was not found for specified context: prod-a' in err


def test_nodes_minor_only_expectation(cluster):
    assert cluster.gate("nodes", "--worker-version", "v1.27", "--control-plane-version", "1.27")[0] == 0
    cluster.api.replace(fixture("nodes_old_kubelet.json"))
    code, err = cluster.gate("nodes", "--worker-version", "v1.27")
    assert code == 1 and "ip-10-20-3-23.us-west-2.compute.internal: kubelet v1.26.15, want v1.27" in err


def test_nodes_notready_named(cluster):
    cluster.api.replace(fixture("nodes_notready.json"))
    code, err = cluster.gate("nodes", "--worker-version", "v1.27.16")
    assert code == 1
    line = final_line(err)
    assert "gate nodes FAILED" in line
    assert "worker ip-10-20-2-22.us-west-2.compute.internal: Ready=Unknown (NodeStatusUnknown)" in line
    assert "ip-10-20-1-21" not in line


def test_nodes_wrong_kubelet_named(cluster):
    cluster.api.replace(fixture("nodes_old_kubelet.json"))
    code, err = cluster.gate("nodes", "--control-plane-version", "v1.27.16", "--worker-version", "v1.27.16")
    assert code == 1
    assert "worker ip-10-20-3-23.us-west-2.compute.internal: kubelet v1.26.15, want v1.27.16" in final_line(err)
    # the control plane is at the version asked of it, so only a wrong expectation trips it
    code, err = cluster.gate("nodes", "--control-plane-version", "v1.28.15")
    assert code == 1 and "control-plane ip-10-20-1-10.us-west-2.compute.internal: kubelet v1.27.16, want v1.28.15" in err


def _label(data: dict, node: str, pool: str) -> None:
    for n in data["items"]:
        if n["metadata"]["name"].startswith(node):
            n["metadata"]["labels"]["kubehop.io/pool"] = pool


def test_nodes_of_a_pool_rolling_after_serving_are_held_to_its_own_kubelet(cluster):
    versions = ["--control-plane-version", "v1.27.16", "--worker-version", "v1.27.16"]
    # ip-10-20-3-23 runs v1.26.15: its pool rolls after serving
    cluster.api.replace(fixture("nodes_old_kubelet.json", lambda d: (_label(d, "ip-10-20-3-23", "spark"),
                                                                     _label(d, "ip-10-20-1-21", "workers"))))
    assert cluster.gate("nodes", *versions, "--pool-version", "spark=v1.26.15")[0] == 0
    # a node of another pool at the old kubelet still fails: the pool's label names what it must run
    cluster.api.replace(fixture("nodes_old_kubelet.json", lambda d: _label(d, "ip-10-20-3-23", "workers")))
    code, err = cluster.gate("nodes", *versions, "--pool-version", "spark=v1.26.15")
    assert code == 1 and "ip-10-20-3-23.us-west-2.compute.internal: kubelet v1.26.15, want v1.27.16" in final_line(err)
    # and the deferred pool's nodes must be at its version, not the workers'
    cluster.api.replace(fixture("nodes_old_kubelet.json", lambda d: _label(d, "ip-10-20-2-22", "spark")))
    code, err = cluster.gate("nodes", *versions, "--pool-version", "spark=v1.26.15")
    assert code == 1 and "ip-10-20-2-22.us-west-2.compute.internal: kubelet v1.27.16, want v1.26.15" in final_line(err)


def test_a_node_with_no_pool_label_may_run_either_version_while_a_pool_waits(cluster):
    versions = ["--control-plane-version", "v1.27.16", "--worker-version", "v1.27.16"]
    cluster.api.replace(fixture("nodes_old_kubelet.json"))  # adopted nodes: never rolled by kubehop, no pool label
    assert cluster.gate("nodes", *versions, "--pool-version", "spark=v1.26.15")[0] == 0
    assert cluster.gate("nodes", *versions)[0] == 1  # without a waiting pool, the old kubelet fails as before
    with pytest.raises(SystemExit) as usage:
        cluster.gate("nodes", *versions, "--pool-version", "spark=1.26")
    assert usage.value.code == 2


def test_nodes_cordoned(cluster):
    cluster.api.replace(fixture("nodes_cordoned.json"))
    code, err = cluster.gate("nodes")
    assert code == 1 and "worker ip-10-20-1-21.us-west-2.compute.internal: cordoned" in final_line(err)
    assert cluster.gate("nodes", "--allow-cordoned")[0] == 0


def test_nodes_selector_reaches_the_server(cluster):
    code, err = cluster.gate("nodes", "--selector", "!node-role.kubernetes.io/control-plane")
    assert cluster.api.calls("GET", "/api/v1/nodes")[0].query["labelSelector"] == "!node-role.kubernetes.io/control-plane"
    assert code == 0 and "3 nodes Ready (0 control-plane, 3 worker)" in final_line(err)


def test_nodes_without_control_plane_label_fail_closed(cluster):
    def workers_only(data):
        data["items"] = [n for n in data["items"] if "node-role.kubernetes.io/control-plane" not in n["metadata"]["labels"]]
    cluster.api.replace(fixture("nodes_healthy.json", workers_only))
    code, err = cluster.gate("nodes", "--control-plane-version", "v1.27.16")
    assert code == 1 and "no control-plane nodes listed" in err


def test_nodes_unreachable_server_fails_closed(cluster):
    cluster.api.stop()
    code, err = cluster.gate("nodes", "--request-timeout", "5")
    assert code == 1
    assert "kubectl get nodes exited 1: The connection to the server 127.0.0.1:" in final_line(err)


def test_nodes_unauthorized_fails_closed(cluster):
    cluster.api.refusal = ApiError(401, "Unauthorized", "Unauthorized")
    code, err = cluster.gate("nodes")
    assert code == 1
    assert "kubectl get nodes exited 1: error: You must be logged in to the server (Unauthorized)" in final_line(err)


@pytest.mark.parametrize("body, expect", [
    # an answer kubectl prints as is, but which is no list of Nodes
    ({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [{"kind": "Pod", "apiVersion": "v1",
                                                                         "metadata": {"name": "x"}}]}, "not a Node"),
    ({"apiVersion": "v1", "kind": "NodeList", "metadata": {}, "items": [{"metadata": {}}]}, "without metadata.name"),
])
def test_nodes_untrustworthy_answer_fails_closed(cluster, body, expect):
    cluster.api.raw["/api/v1/nodes"] = ("application/json", json.dumps(body))
    code, err = cluster.gate("nodes")
    assert code == 1 and expect in final_line(err)


def test_missing_kubectl_binary_fails_closed(cluster, tmp_path):
    code = cli.main(["nodes", "--kubectl", str(tmp_path / "no-such-kubectl"), *ONE_LOOK])
    assert code == 1 and "kubectl binary not found" in final_line(cluster.capsys.readouterr().err)


def test_poll_sees_recovery(cluster):
    """The cluster changes mid-poll; the gate passes on a later look."""
    cluster.api.replace(fixture("nodes_notready.json"))
    healed = threading.Timer(0.5, cluster.api.replace, [fixture("nodes_healthy.json")])
    healed.start()
    try:
        code = cli.main(cluster.argv("nodes", "--timeout", "20", "--interval", "0.2"))
    finally:
        healed.cancel()
    err = cluster.capsys.readouterr().err
    assert code == 0, err
    assert "waiting: worker ip-10-20-2-22" in err and "gate nodes passed" in err
    assert len(cluster.api.calls("GET", "/api/v1/nodes")) >= 2


# --- pods ----------------------------------------------------------------------------------

def test_pods_pass_all_namespaces(cluster):
    code, err = cluster.gate("pods")
    assert code == 0, err
    assert "none failing" in final_line(err)
    assert [r.path for r in cluster.api.calls()] == ["/api/v1/pods"]


def test_pods_fail_on_an_empty_list(cluster):
    cluster.api.clear("Pod")
    code, err = cluster.gate("pods")
    assert code == 1 and "no pods in any namespace" in err
    code, err = cluster.gate("pods", "--namespaces", "prdo")  # a typo looks just like an empty namespace
    assert code == 1 and "no pods in prdo" in err


@pytest.mark.parametrize("ref", ["prod/--server=http://198.51.100.7", "--kubeconfig=/tmp/x/y", "Prod/mysql",
                                 "prod/My_Service", "prod/" + "a" * 254])
def test_a_name_that_is_not_a_kubernetes_name_never_reaches_kubectl(cluster, ref):
    with pytest.raises(SystemExit) as exc:
        cli.main([*cluster.argv("endpoints", "--service", ref), *ONE_LOOK])
    assert exc.value.code == 2
    assert cluster.api.calls() == []


def test_kubectl_refuses_a_word_that_reads_as_a_flag():
    from kubehop.gates.kube import Kubectl, KubectlError
    k = Kubectl(binary="/nonexistent/kubectl")
    with pytest.raises(KubectlError, match="cannot start with '-'"):
        k.get("pods", "--server=http://198.51.100.7", kind="Pod", namespace="prod")
    with pytest.raises(KubectlError, match="cannot start with '-'"):
        k.exec("prod", "--as=admin", ["true"], timeout=1)


def test_pods_crashloop_named(cluster):
    cluster.api.replace(fixture("pods_crashloop.json"))
    code, err = cluster.gate("pods")
    assert code == 1
    assert f"{CA_POD} CrashLoopBackOff (container aws-cluster-autoscaler, restarts 9)" in final_line(err)


def test_pods_image_pull_named(cluster):
    cluster.api.replace(fixture("pods_imagepull.json"))
    code, err = cluster.gate("pods")
    assert code == 1 and "prod/dcluster-api-7f9b8c6d5-w2r6t ImagePullBackOff" in final_line(err)


def test_pods_namespace_filter(cluster):
    cluster.api.replace(fixture("pods_crashloop.json"))
    code, err = cluster.gate("pods", "--namespaces", "prod,monitoring")
    assert code == 0, err  # the crash-looping pod is in kube-system
    assert [r.path for r in cluster.api.calls()] == ["/api/v1/namespaces/prod/pods", "/api/v1/namespaces/monitoring/pods"]
    code, err = cluster.gate("pods", "--namespaces", "prod", "--namespaces", "kube-system")
    assert code == 1 and CA_POD in err


def test_pods_pending_too_long(cluster):
    cluster.api.replace(fixture("pods_pending.json"))
    code, err = cluster.gate("pods", "--pending-grace", "300")
    assert code == 1
    line = final_line(err)
    assert "prod/dcluster-api-6c5f7d8b9-zq7nd Pending" in line and "Unschedulable: 0/6 nodes are available" in line
    code, err = cluster.gate("pods", "--max-pending", "1")
    assert code == 0 and "tolerated Pending: prod/dcluster-api-6c5f7d8b9-zq7nd" in final_line(err)


def test_pods_pending_within_grace_passes(cluster):
    just_now = (datetime.now(timezone.utc) - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def fresh(data):
        for pod in data["items"]:
            if pod["status"]["phase"] == "Pending":
                pod["metadata"]["creationTimestamp"] = just_now
    cluster.api.replace(fixture("pods_pending.json", fresh))
    assert cluster.gate("pods", "--pending-grace", "300")[0] == 0
    code, err = cluster.gate("pods", "--pending-grace", "5")
    assert code == 1 and "zq7nd Pending" in err


# --- endpoints -----------------------------------------------------------------------------

def test_endpoints_pass(cluster):
    code, err = cluster.gate("endpoints", "--service", "prod/mysql", "--service", "prod/dcluster-api-public")
    assert code == 0, err
    assert "prod/mysql=2, prod/dcluster-api-public=1" in final_line(err)
    assert [r.path for r in cluster.api.calls()] == [
        "/api/v1/namespaces/prod/endpoints/mysql", "/api/v1/namespaces/prod/endpoints/dcluster-api-public"]


def test_endpoints_not_ready_and_missing_named(cluster):
    cluster.api.load(fixture("endpoints_prod_mysql_notready.json"))
    code, err = cluster.gate("endpoints", "--service", "prod/mysql", "--service", "prod/dcluster-api-public",
                             "--service", "prod/no-such-svc")
    assert code == 1
    line = final_line(err)
    assert "prod/mysql: no ready addresses (1 not ready)" in line
    assert ('prod/no-such-svc: kubectl get endpoints/no-such-svc in prod exited 1: '
            'Error from server (NotFound): endpoints "no-such-svc" not found') in line
    assert "dcluster-api-public" not in line


def test_endpoints_bad_argument_exit_2(cluster):
    with pytest.raises(SystemExit) as exc:
        cli.main(["endpoints", "--service", "mysql"])
    assert exc.value.code == 2


# --- network -------------------------------------------------------------------------------

NETWORK_ARGS = [
    "network",
    "--path", f"chi-mysql=from:prod/{CHI},to:prod/dcluster-mysql-0:3306",
    "--path", f"chi-external=from:prod/{CHI},to:sts.us-west-2.amazonaws.com:443",
    "--node-path", f"node-chi=from:ip-10-20-2-22.us-west-2.compute.internal,to:prod/{CHI}:9000",
    "--node-probe-pods", "kube-system/app=netprobe",
]


@pytest.mark.parametrize("minor", EXEC_MINORS)
def test_network_pass_and_probe_commands(kube_api, capsys, minor):
    c = Cluster(kube_api("prod-b", minor=minor), capsys, minor)
    code, err = c.gate(*NETWORK_ARGS)
    assert code == 0, err
    assert "3 paths ok: chi-mysql, chi-external, node-chi" in final_line(err)
    assert c.api.execs() == [
        ("prod", CHI, ["nc", "-z", "-w", "3", "192.168.4.23", "3306"]),
        ("prod", CHI, ["nc", "-z", "-w", "3", "sts.us-west-2.amazonaws.com", "443"]),
        ("kube-system", "netprobe-m4qd7", ["nc", "-z", "-w", "3", "192.168.3.88", "9000"]),
    ]
    (lookup,) = [r for r in c.api.calls("GET") if r.path == "/api/v1/namespaces/kube-system/pods"]
    assert lookup.query["labelSelector"] == "app=netprobe"
    assert lookup.query["fieldSelector"] == "spec.nodeName=ip-10-20-2-22.us-west-2.compute.internal"


def test_network_failing_probe_named(cluster):
    cluster.failing["192.168.4.23"] = (1, "nc: 192.168.4.23 (192.168.4.23:3306): Connection timed out\n")
    code, err = cluster.gate(*NETWORK_ARGS)
    assert code == 1
    line = final_line(err)
    assert "1/3 paths failing: chi-mysql" in line
    assert "exited 1: nc: 192.168.4.23 (192.168.4.23:3306): Connection timed out" in line


def test_network_ping_without_port_and_custom_command(cluster):
    code, err = cluster.gate("network", "--path", f"p=from:prod/{CHI},to:prod/dcluster-mysql-0",
                             "--ping-cmd", "ping -c 2 -W 1 {ip}")
    assert code == 0, err
    assert cluster.api.execs()[-1] == ("prod", CHI, ["ping", "-c", "2", "-W", "1", "192.168.4.23"])


def test_network_node_probe_pod_must_be_host_network(cluster):
    def pod_network(data):
        for pod in data["items"]:
            pod["spec"].pop("hostNetwork", None)
    cluster.api.load(fixture("pods_netprobe.json", pod_network))
    code, err = cluster.gate(*NETWORK_ARGS)
    assert code == 1 and "node-chi" in final_line(err) and "is not hostNetwork" in final_line(err)


def test_network_target_pod_missing_fails_closed(cluster):
    code, err = cluster.gate("network", "--path", f"gone=from:prod/{CHI},to:prod/dcluster-mysql-9:3306")
    assert code == 1 and "gone (prod/chi-clickhouse-prod-0-0-0 -> prod/dcluster-mysql-9:3306)" in final_line(err)


@pytest.mark.parametrize("argv", [
    ["network"],
    ["network", "--path", "x=from:prod/a"],
    ["network", "--path", "x=from:prod/a,to:example.com"],
    ["network", "--node-path", "x=from:node-1,to:prod/a:80"],
    ["network", "--path", "x=from:prod/a,to:prod/b:80", "--probe-cmd", "nc -z {address} {port}"],
])
def test_network_bad_arguments_exit_2(cluster, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert cluster.api.calls() == []
