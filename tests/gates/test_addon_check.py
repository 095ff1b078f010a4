"""addon-check gates with the real kubectl against a loopback API server
(tests/helpers/kube_api.py); nodes, pods, endpoints, network: tests/gates/test_cluster.py.

The cluster holds the objects of the kubectl-shaped fixtures in
tests/fixtures/kubectl/ (what `kubectl get -o json` prints). A test changes it
with `kube.set(route(...))`: a route names what the gate reads ("get configmaps",
"get --raw", "exec") and the object it now finds there (a fixture file or a
JSON text), or the error the API server answers. Gates run in-process through
the real CLI entry point; kubectl 1.30 (the oldest whose exec speaks WebSocket,
KEP-4006) is the `kubectl` on their PATH.
"""
from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kubehop.gates import cli
from tests.helpers import loopback_http
from tests.helpers.kube_api import ADDON_RESOURCES, ApiError, kubectl_binary

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubectl"
EXEC_MINOR = 30
ONE_LOOK = ["--timeout", "0", "--interval", "0"]

CA_DEPLOY = "cluster-autoscaler-aws-cluster-autoscaler"
CA_POD = "kube-system/cluster-autoscaler-aws-cluster-autoscaler-7c9d8b5f6-q2w8e"
CHI = "chi-clickhouse-prod-0-0-0"


def route(match: str, file: str | None = None, **kw) -> dict:
    r = {"match": match.split(), **kw}
    if file:
        r["file"] = file
    return r


HEALTHY = [
    route("get nodes", "nodes_healthy.json"),
    route("get pods dcluster-mysql-0", "pod_prod_dcluster-mysql-0.json"),
    route(f"get pods {CHI}", f"pod_prod_{CHI}.json"),
    route("get pods", "pods_healthy.json"),
    route(f"get deployments {CA_DEPLOY}", "deployment_cluster-autoscaler.json"),
    route("get deployments kube-state-metrics", "deployment_kube-state-metrics.json"),
    route("get deployments ingress-nginx-controller", "deployment_ingress-nginx-controller.json"),
    route("get daemonsets aws-cloud-controller-manager", "daemonset_aws-cloud-controller-manager.json"),
    route("get daemonsets calico-node", "daemonset_calico-node.json"),
    route("get configmaps cluster-autoscaler-status", "configmap_cluster-autoscaler-status.json"),
    route("get services ingress-nginx-controller", "service_ingress-nginx-controller.json"),
    route("get services", "services.json"),
    route("get endpoints mysql", "endpoints_prod_mysql.json"),
    route("get endpoints dcluster-api-public", "endpoints_prod_dcluster-api-public.json"),
    route("get tigerastatuses.operator.tigera.io calico", stdout=json.dumps({
        "apiVersion": "operator.tigera.io/v1", "kind": "TigeraStatus", "metadata": {"name": "calico"},
        "status": {"conditions": [  # operator.tigera.io/v1 TigeraStatus, as tigera/operator writes it
            {"type": "Available", "status": "True", "lastTransitionTime": "2026-11-20T09:50:00Z", "reason": "AllObjectsAvailable"},
            {"type": "Progressing", "status": "False", "lastTransitionTime": "2026-11-20T09:50:00Z", "reason": "AllObjectsAvailable"},
            {"type": "Degraded", "status": "False", "lastTransitionTime": "2026-11-20T09:50:00Z", "reason": "AllObjectsAvailable"}]}})),
    route("get leases.coordination.k8s.io cloud-controller-manager", stdout=json.dumps({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "cloud-controller-manager", "namespace": "kube-system"},
        "spec": {"holderIdentity": "ip-10-20-1-10_5c1f", "leaseDurationSeconds": 15,
                 "acquireTime": "2026-11-20T09:47:00.000000Z", "renewTime": "2026-11-20T09:59:58.123456Z"}})),
    route("exec", stdout=""),
]


class Loopback:
    """The healthy cluster in a loopback API server; `set` changes what the gates find."""

    def __init__(self, api, tmp_path: Path):
        self.api, self.dir = api, tmp_path
        for resource in ADDON_RESOURCES:
            api.add_resource(resource)
        self.exec_answer = (0, "", "")
        api.exec_handler = lambda ns, pod, container, command: self.exec_answer
        self.set()

    def set(self, *overrides: dict) -> None:
        """The healthy cluster, then these (the first one named wins, as the routes did)."""
        with self.api.lock:
            self.api.objects.clear()
        self.api.raw.clear()
        self.exec_answer = (0, "", "")
        for r in [*HEALTHY[::-1], *overrides[::-1]]:
            self._apply(r)

    def _apply(self, r: dict) -> None:
        words, code, stderr = r["match"], r.get("exit", 0), r.get("stderr", "")
        if words[0] == "exec":
            self.exec_answer = (code, r.get("stdout", ""), stderr)
        elif words[:2] == ["get", "--raw"]:
            path = words[2] if len(words) > 2 else KSM_PROXY
            if code:  # "Error from server (Reason): message", as kubectl prints the Status
                reason, message = re.match(r"Error from server \((\w+)\): (.*)", stderr.strip()).groups()
                self.api.raw[path] = ApiError(503 if reason == "ServiceUnavailable" else 500, reason, message)
            else:
                self.api.raw[path] = ("text/plain; version=0.0.4", r["stdout"])
        elif code:  # NotFound: the object is gone
            plural, name = re.search(r'(\S+) "([^"]+)" not found', stderr).groups()
            with self.api.lock:
                for key in [k for k in self.api.objects if k[0].split(".")[0] == plural and k[2] == name]:
                    del self.api.objects[key]
        else:
            doc = json.loads((FIXTURES / r["file"]).read_text()) if "file" in r else json.loads(r["stdout"])
            self.api.load(*(doc["items"] if doc.get("kind", "").endswith("List") else [doc]))

    def fixture(self, name: str, edit) -> str:
        """A copy of a fixture changed by edit(data); returns its absolute path."""
        data = json.loads((FIXTURES / name).read_text())
        edit(data)
        path = self.dir / f"edited_{name}"
        path.write_text(json.dumps(data, indent=4, sort_keys=True))
        return str(path)


@pytest.fixture
def kube(kube_api, tmp_path, monkeypatch):
    api = kube_api("prod-b", minor=EXEC_MINOR)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kubectl").symlink_to(kubectl_binary(EXEC_MINOR))
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig))
    return Loopback(api, tmp_path)


def gate(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main([*argv, *ONE_LOOK])
    return code, capsys.readouterr().err


def final_line(err: str) -> str:
    return err.strip().splitlines()[-1]


# --- addon-check: cluster-autoscaler -------------------------------------------------------

CA_ARGS = ["addon-check", "--addon", "cluster-autoscaler", "--namespace", "kube-system",
           "--workload", f"deployment/{CA_DEPLOY}", "--image-tag", "v1.27", "--node-group", "aws-uswest2-prod-b-workers"]


def test_ca_fails_when_a_configured_pool_is_not_listed(kube, capsys):
    """The status omits node groups when none were discovered and stays Healthy
    (kubernetes/autoscaler clusterstate/api/utils.go): the check must not pass."""
    def no_groups(data):
        text = data["data"]["status"]
        data["data"]["status"] = text.split("NodeGroups:")[0]
    kube.set(route("get configmaps", kube.fixture("configmap_cluster-autoscaler-status.json", no_groups)))
    code, err = gate(capsys, *CA_ARGS, "--status-max-age", "0")
    assert code == 1, err
    assert "does not list node group aws-uswest2-prod-b-workers" in final_line(err)
    code, err = gate(capsys, *CA_ARGS, "--node-group", "aws-uswest2-prod-b-spark", "--status-max-age", "0")
    assert code == 1 and "aws-uswest2-prod-b-spark" in final_line(err)


def test_ca_pass_classic_status(kube, capsys):
    code, err = gate(capsys, *CA_ARGS, "--status-max-age", "0")
    assert code == 0, err
    assert "status Healthy" in final_line(err)
    (listed, *_) = kube.api.calls("GET", "/api/v1/namespaces/kube-system/pods")
    assert listed.query["labelSelector"] == (
        "app.kubernetes.io/instance=cluster-autoscaler,app.kubernetes.io/name=aws-cluster-autoscaler")


def test_ca_pass_yaml_status(kube, capsys):
    kube.set(route("get configmaps", "configmap_cluster-autoscaler-status_yaml.json"))
    code, err = gate(capsys, *CA_ARGS, "--status-max-age", "0")
    assert code == 0, err


def test_ca_unhealthy_named(kube, capsys):
    kube.set(route("get configmaps", "configmap_cluster-autoscaler-status_unhealthy.json"))
    code, err = gate(capsys, *CA_ARGS, "--status-max-age", "0")
    assert code == 1
    line = final_line(err)
    assert "cluster-autoscaler reports cluster-wide health Unhealthy" in line
    assert "node group aws-uswest2-prod-b-workers: Unhealthy" in line


def test_ca_yaml_unhealthy(kube, capsys):
    def unhealthy(data):
        data["data"]["status"] = data["data"]["status"].replace("status: Healthy", "status: Unhealthy", 1)
    kube.set(route("get configmaps", kube.fixture("configmap_cluster-autoscaler-status_yaml.json", unhealthy)))
    code, err = gate(capsys, *CA_ARGS, "--status-max-age", "0")
    assert code == 1 and "cluster-wide health Unhealthy" in err


def test_ca_crashloop_named(kube, capsys):
    kube.set(route("get pods", "pods_crashloop.json"),
             route(f"get deployments {CA_DEPLOY}", "deployment_cluster-autoscaler_unavailable.json"))
    code, err = gate(capsys, *CA_ARGS, "--status-max-age", "0")
    assert code == 1
    line = final_line(err)
    assert f"deployment/{CA_DEPLOY} in kube-system: ready 0/1, available 0/1" in line
    assert f"pod {CA_POD}: CrashLoopBackOff" in line


def test_ca_rollout_not_observed(kube, capsys):
    kube.set(route(f"get deployments {CA_DEPLOY}", "deployment_cluster-autoscaler_rolling.json"))
    code, err = gate(capsys, *CA_ARGS, "--status-max-age", "0")
    assert code == 1 and "controller has not seen generation 5 (observed 4)" in err


def test_ca_wrong_image_tag(kube, capsys):
    code, err = gate(capsys, *[a if a != "v1.27" else "v1.28" for a in CA_ARGS], "--status-max-age", "0")
    assert code == 1
    assert ("container aws-cluster-autoscaler: image registry.k8s.io/autoscaling/cluster-autoscaler:v1.27.8 "
            "is not tag v1.28") in final_line(err)


def test_ca_status_from_before_pod_start(kube, capsys):
    kube.set(route("get configmaps", "configmap_cluster-autoscaler-status_stale.json"))
    code, err = gate(capsys, *CA_ARGS, "--status-max-age", "0")
    assert code == 1 and "before the running autoscaler started" in final_line(err)


def test_ca_status_max_age(kube, capsys):
    def written(seconds_ago):
        stamp = (datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%d %H:%M:%S.%f000 +0000 UTC")

        def edit(data):
            old = data["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/last-updated"]
            data["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/last-updated"] = stamp
            data["data"]["status"] = data["data"]["status"].replace(old, stamp)
        return edit
    kube.set(route("get configmaps", kube.fixture("configmap_cluster-autoscaler-status.json", written(20))))
    assert gate(capsys, *CA_ARGS)[0] == 0
    kube.set(route("get configmaps", kube.fixture("configmap_cluster-autoscaler-status.json", written(3600))))
    code, err = gate(capsys, *CA_ARGS)
    assert code == 1 and "limit 600s" in final_line(err)


def test_ca_missing_status_configmap_fails_closed(kube, capsys):
    kube.set(route("get configmaps", exit=1,
                   stderr='Error from server (NotFound): configmaps "cluster-autoscaler-status" not found\n'))
    code, err = gate(capsys, *CA_ARGS, "--status-max-age", "0")
    assert code == 1 and 'configmaps "cluster-autoscaler-status" not found' in final_line(err)


# --- addon-check: aws-cloud-controller-manager ---------------------------------------------

CCM_ARGS = ["addon-check", "--addon", "aws-cloud-controller-manager", "--namespace", "kube-system",
            "--workload", "daemonset/aws-cloud-controller-manager", "--image-tag", "v1.27",
            "--lease", "kube-system/cloud-controller-manager"]


def test_ccm_pass(kube, capsys):
    code, err = gate(capsys, *CCM_ARGS)
    assert code == 0, err
    assert "nodes initialised, leader lease renewed" in final_line(err)


def test_ccm_lease_not_renewed_since_rollout_fails(kube, capsys):
    stale = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "cloud-controller-manager", "namespace": "kube-system"},
             "spec": {"holderIdentity": "old", "renewTime": "2026-11-20T09:00:00.000000Z"}}
    kube.set(route("get leases.coordination.k8s.io", stdout=json.dumps(stale)))
    code, err = gate(capsys, *CCM_ARGS)
    assert code == 1 and "lease kube-system/cloud-controller-manager: last renewed" in final_line(err)


def test_ccm_uninitialized_node_named(kube, capsys):
    kube.set(route("get nodes", "nodes_uninitialized.json"))
    code, err = gate(capsys, *CCM_ARGS)
    assert code == 1
    line = final_line(err)
    assert ("node ip-10-20-3-23.us-west-2.compute.internal: still has taint "
            "node.cloudprovider.kubernetes.io/uninitialized") in line
    assert "node ip-10-20-3-23.us-west-2.compute.internal: no spec.providerID" in line


# --- addon-check: kube-state-metrics -------------------------------------------------------

class Metrics:
    body = b""
    status = 200


@pytest.fixture
def metrics_server():
    class Handler(loopback_http.Handler):
        def do_GET(self):  # noqa: N802
            self.reply(Metrics.status, Metrics.body, "text/plain; version=0.0.4")

    server = loopback_http.start(Handler)
    Metrics.status = 200
    yield f"{loopback_http.url(server)}/metrics"
    loopback_http.stop(server)


KSM_BODY = b"""# HELP kube_node_info [STABLE] Information about a cluster node.
# TYPE kube_node_info gauge
kube_node_info{node="ip-10-20-1-10.us-west-2.compute.internal",kernel_version="6.5.0-1020-aws",os_image="Ubuntu 22.04.4 LTS",container_runtime_version="containerd://1.7.13",kubelet_version="v1.27.16",kubeproxy_version="v1.27.16",provider_id="aws:///us-west-2a/i-0c4f2a9e81d3b7001",pod_cidr="192.168.0.0/24",system_uuid="ec2a",internal_ip="10.20.1.10"} 1
# HELP kube_pod_status_phase [STABLE] The pods current phase.
# TYPE kube_pod_status_phase gauge
kube_pod_status_phase{namespace="prod",pod="dcluster-mysql-0",uid="0b1c",phase="Pending"} 0
kube_pod_status_phase{namespace="prod",pod="dcluster-mysql-0",uid="0b1c",phase="Running"} 1
"""

KSM_ARGS = ["addon-check", "--addon", "kube-state-metrics", "--namespace", "monitoring",
            "--workload", "deployment/kube-state-metrics", "--image-tag", "v2.10"]


KSM_PROXY = "/api/v1/namespaces/monitoring/services/kube-state-metrics:8080/proxy/metrics"


def test_ksm_pass_through_the_service_proxy(kube, capsys):
    kube.set(route(f"get --raw {KSM_PROXY}", stdout=KSM_BODY.decode()))
    code, err = gate(capsys, *KSM_ARGS, "--metrics-service", "kube-state-metrics:8080")
    assert code == 0, err
    assert "metrics served" in final_line(err)
    assert kube.api.calls("GET", KSM_PROXY)


def test_ksm_series_missing(kube, capsys):
    body = "\n".join(line for line in KSM_BODY.decode().splitlines() if not line.startswith("kube_pod_status_phase{"))
    kube.set(route("get --raw", stdout=body))
    code, err = gate(capsys, *KSM_ARGS, "--metrics-service", "kube-state-metrics:8080")
    assert code == 1 and "no kube_pod_status_phase samples" in final_line(err)


def test_ksm_proxy_error_fails(kube, capsys):
    kube.set(route("get --raw", exit=1, stderr='Error from server (ServiceUnavailable): no endpoints available for service "kube-state-metrics:8080"\n'))
    code, err = gate(capsys, *KSM_ARGS, "--metrics-service", "kube-state-metrics:8080")
    assert code == 1 and "no endpoints available" in final_line(err)


def test_ksm_prometheus_target_must_be_up(kube, capsys, metrics_server):
    kube.set(route("get --raw", stdout=KSM_BODY.decode()))
    prom = metrics_server.rsplit("/", 1)[0]
    def targets(health):  # Prometheus HTTP API /api/v1/targets
        return json.dumps({"status": "success", "data": {"activeTargets": [
            {"labels": {"job": "kube-state-metrics", "instance": "10.0.0.5:8080"}, "scrapeUrl": "http://10.0.0.5:8080/metrics",
             "health": health}]}}).encode()
    Metrics.body = targets("up")
    code, err = gate(capsys, *KSM_ARGS, "--metrics-service", "kube-state-metrics:8080", "--prometheus-url", prom)
    assert code == 0, err
    Metrics.body = targets("down")
    code, err = gate(capsys, *KSM_ARGS, "--metrics-service", "kube-state-metrics:8080", "--prometheus-url", prom)
    assert code == 1 and "is not up" in final_line(err)


def test_ksm_needs_metrics_service(kube):
    with pytest.raises(SystemExit) as exc:
        cli.main(KSM_ARGS)
    assert exc.value.code == 2


# --- addon-check: ingress-nginx ------------------------------------------------------------

NGINX_ARGS = ["addon-check", "--addon", "ingress-nginx", "--namespace", "ingress-nginx",
              "--workload", "deployment/ingress-nginx-controller", "--image-tag", "v1.11.8"]


def test_ingress_nginx_pass(kube, capsys):
    code, err = gate(capsys, *NGINX_ARGS)
    assert code == 0, err  # the image is pinned by digest too: the tag is still read


def test_ingress_nginx_lb_pending(kube, capsys):
    kube.set(route("get services ingress-nginx-controller", "service_ingress-nginx-controller_pending.json"))
    code, err = gate(capsys, *NGINX_ARGS)
    assert code == 1
    assert "service ingress-nginx/ingress-nginx-controller: LoadBalancer has no" in final_line(err)


def test_ingress_nginx_urls_answer(kube, capsys, metrics_server):
    Metrics.body, Metrics.status = b"ok", 200
    code, err = gate(capsys, *NGINX_ARGS, "--url", f"grafana={metrics_server}=200")
    assert code == 0, err


def test_ingress_nginx_url_wrong_status_or_down_fails(kube, capsys, metrics_server):
    Metrics.body, Metrics.status = b"bad gateway", 502
    code, err = gate(capsys, *NGINX_ARGS, "--url", f"grafana={metrics_server}=200")
    assert code == 1 and "grafana" in final_line(err) and "502" in final_line(err)
    code, err = gate(capsys, *NGINX_ARGS, "--url", "loki=http://127.0.0.1:9/ready=200")
    assert code == 1 and "loki" in final_line(err) and "unreachable" in final_line(err)


def test_url_is_only_for_ingress(kube):
    with pytest.raises(SystemExit) as exc:
        cli.main([*KSM_ARGS, "--metrics-service", "k:8080", "--url", "g=http://127.0.0.1:9/=200"])
    assert exc.value.code == 2


# --- addon-check: calico -------------------------------------------------------------------

CALICO_ARGS = ["addon-check", "--addon", "calico", "--namespace", "calico-system",
               "--workload", "daemonset/calico-node", "--image-tag", "v3.27",
               "--probe-from", f"prod/{CHI}", "--probe-to", "prod/dcluster-mysql-0:3306"]


def test_calico_pass(kube, capsys):
    code, err = gate(capsys, *CALICO_ARGS)
    assert code == 0, err
    assert kube.api.execs() == [("prod", CHI, ["nc", "-z", "-w", "3", "192.168.4.23", "3306"])]


def test_calico_fails_while_calico_node_runs_the_old_image(kube, capsys):
    """Helm upgrades only the operator; calico-node at v3.27.5 is the old, Ready DaemonSet."""
    argv = [a if a != "v3.27" else "v3.29.7" for a in CALICO_ARGS]
    code, err = gate(capsys, *argv)
    assert code == 1
    assert "image docker.io/calico/node:v3.27.5 is not tag v3.29.7" in final_line(err)


@pytest.mark.parametrize("ctype,status", [("Available", "False"), ("Progressing", "True"), ("Degraded", "True")])
def test_calico_fails_until_tigerastatus_settles(kube, capsys, ctype, status):
    doc = json.loads(next(r["stdout"] for r in HEALTHY if "tigerastatuses.operator.tigera.io" in r["match"]))
    for cond in doc["status"]["conditions"]:
        if cond["type"] == ctype:
            cond["status"] = status
    kube.set(route("get tigerastatuses.operator.tigera.io", stdout=json.dumps(doc)))
    code, err = gate(capsys, *CALICO_ARGS)
    assert code == 1 and f"tigerastatus/calico: {ctype} is {status}" in final_line(err)


def test_calico_tigerastatus_from_before_the_rollout_fails(kube, capsys):
    doc = json.loads(next(r["stdout"] for r in HEALTHY if "tigerastatuses.operator.tigera.io" in r["match"]))
    for cond in doc["status"]["conditions"]:
        cond["lastTransitionTime"] = "2026-11-01T00:00:00Z"
    kube.set(route("get tigerastatuses.operator.tigera.io", stdout=json.dumps(doc)))
    code, err = gate(capsys, *CALICO_ARGS)
    assert code == 1 and "not observed after the release" in final_line(err)


def test_calico_probe_failing(kube, capsys):
    kube.set(route("exec", exit=1, stderr="command terminated with exit code 1\n"))
    code, err = gate(capsys, *CALICO_ARGS)
    assert code == 1
    line = final_line(err)
    assert f"pod-to-pod prod/{CHI} -> prod/dcluster-mysql-0:3306 (192.168.4.23)" in line
    assert "exited 1: command terminated with exit code 1" in line


def test_calico_daemonset_rolling(kube, capsys):
    kube.set(route("get daemonsets calico-node", "daemonset_calico-node_rolling.json"))
    code, err = gate(capsys, *CALICO_ARGS)
    assert code == 1 and "daemonset/calico-node in calico-system: updated 4/6, ready 5/6, available 5/6" in err


def test_calico_target_not_running(kube, capsys):
    def pending(data):
        data["status"]["phase"] = "Pending"
    kube.set(route("get pods dcluster-mysql-0", kube.fixture("pod_prod_dcluster-mysql-0.json", pending)))
    code, err = gate(capsys, *CALICO_ARGS)
    assert code == 1 and "pod prod/dcluster-mysql-0 is Pending, not Running" in final_line(err)
    assert kube.api.execs() == []


@pytest.mark.parametrize("argv", [
    CALICO_ARGS[:-4],                                       # no probe
    CALICO_ARGS + ["--metrics-service", "k:1"],  # flag of another addon
    [a if a != "daemonset/calico-node" else "pod/calico-node" for a in CALICO_ARGS],
])
def test_calico_bad_arguments_exit_2(kube, argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2


# --- addon-check: generic ------------------------------------------------------------------

def test_generic_missing_workload_named(kube, capsys):
    code, err = gate(capsys, "addon-check", "--addon", "generic", "--namespace", "kube-system",
                     "--workload", "deployment/metrics-server")
    assert code == 1 and "deployment/metrics-server: kubectl get deployments/metrics-server in kube-system exited 1" in err


def test_fixtures_are_kubectl_shaped():
    """Every list fixture is what `kubectl get -o json` prints; every item has apiVersion and kind."""
    for path in FIXTURES.glob("*.json"):
        data = json.loads(path.read_text())
        if data["kind"] == "List":
            assert data["apiVersion"] == "v1" and data["metadata"] == {"resourceVersion": ""}, path
            assert all(item.get("apiVersion") and item.get("kind") for item in data["items"]), path
        else:
            assert data.get("apiVersion") and data["metadata"]["name"], path
        assert path.read_text() == json.dumps(data, indent=4, sort_keys=True) + "\n", path



@pytest.mark.parametrize("request_timeout", [0, 0.5, 30])
def test_one_kubectl_bound_for_every_gate(request_timeout):
    """kube and cutover gates share one argv and one process backstop (they once drifted by 10 s)."""
    from kubehop.gates import cutover, kube as kube_mod
    shared = kube_mod.Kubectl("kubectl", "/k.conf", "ctx", request_timeout)
    action = cutover.Kubectl("kubectl", kubeconfig="/k.conf", context="ctx", request_timeout=request_timeout)
    assert action.timeout == shared.backstop == {0: 300.0, 0.5: 1.5, 30: 45.0}[request_timeout]
    assert action.client.base() == shared.base()
