"""Every addon's check, exactly as the program declares it for prod-b, run with the
real kubectl clients (kubectl.1.27 ... 1.33) against the loopback API server
(tests/helpers/kube_api.py), which holds objects shaped like each chart's own
templates at the pinned version:

- calico: what tigera-operator renders into calico-system (tigera/operator
  pkg/render/node.go: DaemonSet calico-node, selector k8s-app=calico-node; the
  kube-controllers Deployment alike) and its TigeraStatus `calico`
  (operator.tigera.io/v1, cluster-scoped, conditions Available/Progressing/Degraded).
- aws-cloud-controller-manager chart 0.0.8 (kubernetes/cloud-provider-aws at
  f5ed8ae9, templates/daemonset.yaml): DaemonSet named by nameOverride
  (aws-cloud-controller-manager) in .Values.namespace, selector k8s-app=<name>;
  the leader Lease kube-system/cloud-controller-manager (k8s.io/cloud-provider).
- cluster-autoscaler chart 9.28.0 (kubernetes/autoscaler tag
  cluster-autoscaler-chart-9.28.0, templates/_helpers.tpl): Deployment
  `<release>-aws-cluster-autoscaler`, selector app.kubernetes.io/instance +
  app.kubernetes.io/name; the status ConfigMap the autoscaler writes
  (classic text format of CA 1.26, clusterstate/api).
- kube-state-metrics chart 5.11.1 (prometheus-community/helm-charts tag
  kube-state-metrics-5.11.1): Deployment and Service `kube-state-metrics`
  (fullname: the release contains the chart name), selector
  app.kubernetes.io/name + instance, Service port `http` 8080; /metrics read
  through the API server's service proxy path.
- ingress-nginx chart 4.11.8 (kubernetes/ingress-nginx tag helm-chart-4.11.8):
  Deployment and LoadBalancer Service `ingress-nginx-controller`, selector
  app.kubernetes.io/name=ingress-nginx, instance, component=controller.
- each release's Helm storage Secret (helm/helm pkg/storage/driver/secrets.go).

Addresses in prod-b's config (Prometheus, ingress URLs) are data: the tests
replace them with loopback servers before any check runs.
"""
from __future__ import annotations

import base64
import gzip
import json
import shlex
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from kubehop.gates import cli
from kubehop.plan import engine
from kubehop.plan.stages import read_stack_file
from tests.helpers import loopback_http
from tests.helpers.kube_api import ADDON_RESOURCES, KUBECTL_MINORS, kubectl_binary
from tests.helpers.prom_harness import clean_proxy_env, free_port, prometheus_binary
from tests.plan_helpers import prod_b

pytestmark = pytest.mark.skipif(not KUBECTL_MINORS, reason="no kubectl.1.NN (scripts/install-test-deps.sh says how)")

NEWEST, OLDEST = KUBECTL_MINORS[-1], KUBECTL_MINORS[0]
NOW = datetime.now(timezone.utc)
KSM_METRICS = ('# HELP kube_node_info [STABLE] Information about a cluster node.\n# TYPE kube_node_info gauge\n'
               'kube_node_info{node="ip-10-42-1-20.us-west-2.compute.internal"} 1\n'
               '# HELP kube_pod_status_phase [STABLE] The pods current phase.\n# TYPE kube_pod_status_phase gauge\n'
               'kube_pod_status_phase{namespace="prod",pod="dcluster-mysql-0",phase="Running"} 1\n')


def at(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_time(seconds_ago: float) -> str:  # how CA writes its timestamps (Go time.Time String())
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%d %H:%M:%S.%f000 +0000 UTC")


@pytest.fixture(scope="module")
def checks() -> dict[str, list[str]]:
    """The addon-check argv of each addon, from the adoption run of prod-b's own program."""
    sf = read_stack_file(prod_b())
    run = engine.run_program(sf.raw, sf.secret_keys, stack="prod-b", stack_outputs={}, template_versions={})
    out = {}
    for r in run.resources.values():
        if r.name.endswith("-addon-check"):
            words = shlex.split(r.inputs["create"])
            assert words[:3] == ["bash", "components/scripts/run_gate.sh", "addon-check"]
            out[r.name.removesuffix("-addon-check")] = words[2:]
    return out


def loopback_only(argv: list[str], **replace: str | None) -> list[str]:
    """The argv with each `--flag value` in `replace` swapped (None: dropped); every
    remaining URL must be loopback."""
    out, i = [], 0
    while i < len(argv):
        flag = argv[i].removeprefix("--").replace("-", "_")
        if argv[i].startswith("--") and flag in replace:
            if replace[flag] is not None:
                out += [argv[i], replace[flag]]
            i += 2
            continue
        out.append(argv[i])
        i += 1
    assert not [a for a in out if "://" in a and "://127.0.0.1" not in a], out
    return out


# --- objects shaped like the charts' templates ---------------------------------------------

def workload(kind: str, ns: str, name: str, labels: dict, image: str, container: str, replicas: int = 2) -> dict:
    status = ({"observedGeneration": 3, "desiredNumberScheduled": replicas, "currentNumberScheduled": replicas,
               "updatedNumberScheduled": replicas, "numberReady": replicas, "numberAvailable": replicas}
              if kind == "DaemonSet" else
              {"observedGeneration": 3, "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas,
               "availableReplicas": replicas})
    spec = {"selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": [{"name": container, "image": image}]}}}
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    return {"kind": kind, "apiVersion": "apps/v1", "metadata": {"name": name, "namespace": ns, "generation": 3,
                                                                "labels": dict(labels)}, "spec": spec, "status": status}


def pods(w: dict, started_ago: float = 300, ip_base: str = "192.168.7.") -> list[dict]:
    labels = w["spec"]["template"]["metadata"]["labels"]
    container = w["spec"]["template"]["spec"]["containers"][0]
    n = w["status"].get("replicas") or w["status"].get("desiredNumberScheduled")
    return [{"kind": "Pod", "apiVersion": "v1",
             "metadata": {"name": f"{w['metadata']['name']}-{i}", "namespace": w["metadata"]["namespace"], "labels": dict(labels)},
             "spec": {"nodeName": f"ip-10-42-1-{20 + i}", "containers": [dict(container)]},
             "status": {"phase": "Running", "podIP": f"{ip_base}{10 + i}",
                        "conditions": [{"type": "Ready", "status": "True"}],
                        "containerStatuses": [{"name": container["name"], "ready": True, "restartCount": 0,
                                               "image": container["image"],
                                               "state": {"running": {"startedAt": at(started_ago)}}}]}}
            for i in range(n)]


def helm_release(ns: str, name: str, chart: str, version: str, revision: int = 2) -> dict:
    """Helm's storage Secret: data.release = base64(gzip(JSON release)), then Secret data base64."""
    release = {"name": name, "namespace": ns, "version": revision, "info": {"status": "deployed"},
               "chart": {"metadata": {"name": chart, "version": version}}, "config": {}}
    inner = base64.b64encode(gzip.compress(json.dumps(release).encode()))
    return {"kind": "Secret", "apiVersion": "v1", "type": "helm.sh/release.v1",
            "metadata": {"name": f"sh.helm.release.v1.{name}.v{revision}", "namespace": ns,
                         "labels": {"owner": "helm", "name": name, "status": "deployed", "version": str(revision)}},
            "data": {"release": base64.b64encode(inner).decode()}}


def ca_status(groups: list[str], written_ago: float = 20) -> str:
    when = go_time(written_ago)
    out = [f"Cluster-autoscaler status at {when}:", "Cluster-wide:",
           "  Health:      Healthy (ready=6 unready=0 notStarted=0 longNotStarted=0 registered=6 longUnregistered=0)",
           f"               LastProbeTime:      {when}", ""]
    if groups:
        out.append("NodeGroups:")
        for g in groups:
            out += [f"  Name:        {g}", "  Health:      Healthy (ready=2 unready=0 cloudProviderTarget=2 (minSize=1, maxSize=9))",
                    f"               LastProbeTime:      {when}"]
    return "\n".join(out) + "\n"


def tigerastatus(available="True", progressing="False", degraded="False", since_ago: float = 60) -> dict:
    return {"kind": "TigeraStatus", "apiVersion": "operator.tigera.io/v1", "metadata": {"name": "calico"},
            "status": {"conditions": [{"type": t, "status": s, "lastTransitionTime": at(since_ago), "reason": "AllObjectsAvailable"}
                                      for t, s in (("Available", available), ("Progressing", progressing), ("Degraded", degraded))]}}


def prod_b_cluster(api, calico_image: str = "quay.io/calico/node:v3.28.5") -> None:
    """prod-b as the adoption run finds it: every addon at the chart the program declares."""
    for r in ADDON_RESOURCES:
        api.add_resource(r)
    api.load(*[{"kind": "Node", "apiVersion": "v1", "metadata": {"name": f"ip-10-42-1-{20 + i}"},
                "spec": {"providerID": f"aws:///us-west-2a/i-0{i}abcdef01234567"},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}} for i in range(3)])
    node = workload("DaemonSet", "calico-system", "calico-node", {"k8s-app": "calico-node"}, calico_image, "calico-node", 3)
    kc = workload("Deployment", "calico-system", "calico-kube-controllers", {"k8s-app": "calico-kube-controllers"},
                  calico_image.replace("/node:", "/kube-controllers:"), "calico-kube-controllers", 1)
    ccm = workload("DaemonSet", "kube-system", "aws-cloud-controller-manager", {"k8s-app": "aws-cloud-controller-manager"},
                   "registry.k8s.io/provider-aws/cloud-controller-manager:v1.26.14", "aws-cloud-controller-manager", 3)
    ca = workload("Deployment", "kube-system", "cluster-autoscaler-aws-cluster-autoscaler",
                  {"app.kubernetes.io/instance": "cluster-autoscaler", "app.kubernetes.io/name": "aws-cluster-autoscaler"},
                  "registry.k8s.io/autoscaling/cluster-autoscaler:v1.26.8", "aws-cluster-autoscaler", 1)
    ksm = workload("Deployment", "kube-system", "kube-state-metrics",
                   {"app.kubernetes.io/name": "kube-state-metrics", "app.kubernetes.io/instance": "kube-state-metrics"},
                   "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.9.2", "kube-state-metrics", 1)
    ing = workload("Deployment", "ingress-nginx", "ingress-nginx-controller",
                   {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/instance": "ingress-nginx",
                    "app.kubernetes.io/component": "controller"},
                   "registry.k8s.io/ingress-nginx/controller:v1.11.8", "controller", 2)
    for w in (node, kc, ccm, ca, ksm, ing):
        api.load(w, *pods(w))
    # the probe's pods (prod/chi-dcluster-0-0-0 -> prod/dcluster-mysql-0:3306)
    for name, ip in (("chi-dcluster-0-0-0", "192.168.4.22"), ("dcluster-mysql-0", "192.168.4.23")):
        api.load({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": "prod"},
                  "spec": {"containers": [{"name": "c", "image": "x"}]},
                  "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}})
    api.load(tigerastatus())
    api.load({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
              "metadata": {"name": "cloud-controller-manager", "namespace": "kube-system"},
              "spec": {"holderIdentity": "ip-10-42-1-20_5c1f", "leaseDurationSeconds": 15, "renewTime": at(5)}})
    api.load({"kind": "ConfigMap", "apiVersion": "v1",
              "metadata": {"name": "cluster-autoscaler-status", "namespace": "kube-system",
                           "annotations": {"cluster-autoscaler.kubernetes.io/last-updated": go_time(20)}},
              "data": {"status": ca_status(["aws-uswest2-prod-b-workers", "aws-uswest2-prod-b-db", "aws-uswest2-prod-b-spark"])}})
    api.load({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "kube-state-metrics", "namespace": "kube-system"},
              "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 8080, "targetPort": 8080}],
                       "selector": ksm["spec"]["selector"]["matchLabels"]}})
    api.load({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
              "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]},
              "status": {"loadBalancer": {"ingress": [{"hostname": "a1b2c3-123.us-west-2.elb.amazonaws.com"}]}}})
    api.raw["/api/v1/namespaces/kube-system/services/kube-state-metrics:8080/proxy/metrics"] = (
        "text/plain; version=0.0.4", KSM_METRICS)
    for ns, name, chart, version in (("tigera-operator", "calico", "tigera-operator", "v3.28.5"),
                                     ("kube-system", "aws-cloud-controller-manager", "aws-cloud-controller-manager", "0.0.8"),
                                     ("kube-system", "cluster-autoscaler", "cluster-autoscaler", "9.28.0"),
                                     ("kube-system", "kube-state-metrics", "kube-state-metrics", "5.11.1"),
                                     ("ingress-nginx", "ingress-nginx", "ingress-nginx", "4.11.8")):
        api.load(helm_release(ns, name, chart, version))
    # the pod-to-pod probe (nc -z) succeeds from the source pod
    api.exec_handler = lambda ns, pod, container, cmd: (0, "", "") if pod == "chi-dcluster-0-0-0" else (1, "", "no route")


def check(capsys, api, argv: list[str], minor: int) -> tuple[int, str]:
    code = cli.main([*argv, "--kubectl", kubectl_binary(minor), "--kubeconfig", str(api.kubeconfig),
                     "--request-timeout", "10", "--timeout", "0", "--interval", "0"])
    out = capsys.readouterr()
    return code, out.err.strip().splitlines()[-1] if out.err.strip() else ""


@pytest.fixture
def cluster(kube_api, monkeypatch):
    clean_proxy_env(monkeypatch)
    api = kube_api("prod-b", minor=29)
    prod_b_cluster(api)
    return api


# --- every addon passes on the healthy cluster, with every kubectl ------------------------

@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_every_addon_check_passes_on_the_chart_shaped_cluster(checks, cluster, capsys, minor):
    for addon, argv in sorted(checks.items()):
        argv = loopback_only(argv, prometheus_url=None, url=None)
        code, last = check(capsys, cluster, argv, minor)
        if addon == "calico" and minor < 30:
            # kubectl <= 1.29 execs over SPDY, which the loopback server refuses: the probe fails closed
            assert code == 1 and "pod-to-pod" in last, last
            continue
        assert code == 0, f"{addon} with kubectl 1.{minor}: {last}"


# --- each check fails for the reason it exists -------------------------------------------

@pytest.mark.parametrize("minor", sorted({OLDEST, NEWEST}))
def test_calico_fails_while_calico_node_runs_the_old_image(checks, kube_api, capsys, minor):
    api = kube_api("prod-b", minor=29)
    prod_b_cluster(api, calico_image="quay.io/calico/node:v3.27.5")  # the operator has not rolled calico-node yet
    code, last = check(capsys, api, checks["calico"], minor)
    assert code == 1 and "image quay.io/calico/node:v3.27.5 is not tag v3.28.5" in last


@pytest.mark.parametrize("conditions,why", [
    ({"available": "False"}, "Available is False"), ({"progressing": "True"}, "Progressing is True"),
    ({"degraded": "True"}, "Degraded is True"), ({"since_ago": 3600}, "not observed after the release")])
def test_calico_fails_until_tigerastatus_settles(checks, cluster, capsys, conditions, why):
    cluster.load(tigerastatus(**conditions))
    code, last = check(capsys, cluster, checks["calico"], NEWEST)
    assert code == 1 and why in last


def test_calico_probe_failing_fails(checks, cluster, capsys):
    cluster.exec_handler = lambda *a: (1, "", "nc: connect timed out")
    code, last = check(capsys, cluster, checks["calico"], NEWEST)
    assert code == 1 and "pod-to-pod prod/chi-dcluster-0-0-0 -> prod/dcluster-mysql-0:3306 (192.168.4.23)" in last


@pytest.mark.parametrize("minor", sorted({OLDEST, NEWEST}))
def test_ca_fails_when_it_found_no_node_group(checks, cluster, capsys, minor):
    """No ASG discovered: the status has no NodeGroups section and stays Healthy."""
    cluster.edit("ConfigMap", "cluster-autoscaler-status", "kube-system", lambda cm: cm["data"].update(status=ca_status([])))
    code, last = check(capsys, cluster, checks["cluster-autoscaler"], minor)
    assert code == 1 and "does not list node group aws-uswest2-prod-b-workers" in last


def test_ca_fails_when_one_pool_is_missing_or_unhealthy(checks, cluster, capsys):
    text = ca_status(["aws-uswest2-prod-b-workers", "aws-uswest2-prod-b-db"])
    cluster.edit("ConfigMap", "cluster-autoscaler-status", "kube-system", lambda cm: cm["data"].update(status=text))
    code, last = check(capsys, cluster, checks["cluster-autoscaler"], NEWEST)
    assert code == 1 and "aws-uswest2-prod-b-spark" in last and "aws-uswest2-prod-b-db" not in last
    unhealthy = ca_status(["aws-uswest2-prod-b-workers", "aws-uswest2-prod-b-db", "aws-uswest2-prod-b-spark"]).replace(
        "Name:        aws-uswest2-prod-b-db\n  Health:      Healthy", "Name:        aws-uswest2-prod-b-db\n  Health:      Unhealthy")
    cluster.edit("ConfigMap", "cluster-autoscaler-status", "kube-system", lambda cm: cm["data"].update(status=unhealthy))
    code, last = check(capsys, cluster, checks["cluster-autoscaler"], NEWEST)
    assert code == 1 and "node group aws-uswest2-prod-b-db: Unhealthy" in last


@pytest.mark.parametrize("minor", sorted({OLDEST, NEWEST}))
def test_ksm_metrics_are_read_through_the_apiserver_proxy(checks, cluster, capsys, minor):
    argv = loopback_only(checks["kube-state-metrics"], prometheus_url=None)
    assert check(capsys, cluster, argv, minor)[0] == 0
    (proxied,) = cluster.calls("GET", "/api/v1/namespaces/kube-system/services/kube-state-metrics:8080/proxy/metrics")
    assert proxied.status == 200
    cluster.raw.pop(proxied.path)  # no endpoints behind the Service: the proxy answers an error
    code, last = check(capsys, cluster, argv, minor)
    assert code == 1 and "/proxy/metrics" in last


def test_ksm_missing_series_fails(checks, cluster, capsys):
    path = "/api/v1/namespaces/kube-system/services/kube-state-metrics:8080/proxy/metrics"
    cluster.raw[path] = ("text/plain", "\n".join(line for line in KSM_METRICS.splitlines() if "kube_pod_status_phase{" not in line))
    code, last = check(capsys, cluster, loopback_only(checks["kube-state-metrics"], prometheus_url=None), NEWEST)
    assert code == 1 and "no kube_pod_status_phase samples" in last


@pytest.mark.skipif(prometheus_binary() is None, reason="no prometheus binary")
def test_ksm_scrape_target_is_up_in_a_real_prometheus(checks, cluster, capsys, tmp_path):
    """A real Prometheus scraping a loopback KSM /metrics as job kube-state-metrics: the
    check reads /api/v1/targets; the target going down fails it."""
    class Metrics(loopback_http.Handler):
        def do_GET(self):  # noqa: N802
            self.reply(200, KSM_METRICS, "text/plain; version=0.0.4")

    metrics = loopback_http.start(Metrics)
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n  - job_name: kube-state-metrics\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics.server_address[1]}']}}]\n")
    prom = subprocess.Popen([prometheus_binary(), f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
                             "--log.level=error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def health() -> str | None:
        try:
            targets = requests.get(f"{url}/api/v1/targets", timeout=1).json()["data"]["activeTargets"]
            return targets[0]["health"] if targets else None
        except (requests.RequestException, ValueError, KeyError):
            return None

    def wait_for(state: str) -> None:
        deadline = time.monotonic() + 20
        while health() != state and time.monotonic() < deadline:
            time.sleep(0.2)
        assert health() == state

    try:
        wait_for("up")
        argv = loopback_only(checks["kube-state-metrics"], prometheus_url=url)
        assert check(capsys, cluster, argv, NEWEST)[0] == 0
        loopback_http.stop(metrics)
        wait_for("down")
        code, last = check(capsys, cluster, argv, NEWEST)
        assert code == 1 and "for kube-state-metrics is not up" in last
    finally:
        prom.terminate()
        prom.wait(timeout=10)


def test_ccm_fails_while_its_lease_is_older_than_its_pods(checks, cluster, capsys):
    cluster.edit("Lease", "cloud-controller-manager", "kube-system", lambda lease: lease["spec"].update(renewTime=at(3600)))
    code, last = check(capsys, cluster, checks["aws-cloud-controller-manager"], NEWEST)
    assert code == 1 and "lease kube-system/cloud-controller-manager: last renewed" in last


def test_ccm_fails_while_a_node_is_uninitialised(checks, cluster, capsys):
    cluster.edit("Node", "ip-10-42-1-21", None, lambda n: n["spec"].update(
        taints=[{"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"}]))
    code, last = check(capsys, cluster, checks["aws-cloud-controller-manager"], OLDEST)
    assert code == 1 and "node ip-10-42-1-21: still has taint node.cloudprovider.kubernetes.io/uninitialized" in last


def test_ingress_fails_without_a_load_balancer_address(checks, cluster, capsys):
    cluster.edit("Service", "ingress-nginx-controller", "ingress-nginx", lambda s: s.update(status={"loadBalancer": {}}))
    code, last = check(capsys, cluster, loopback_only(checks["ingress-nginx"], url=None), NEWEST)
    assert code == 1 and "LoadBalancer has no status.loadBalancer.ingress address" in last


@pytest.mark.parametrize("minor", sorted({OLDEST, NEWEST}))
def test_a_release_running_another_chart_fails_its_check(checks, cluster, capsys, minor):
    """What the recorded state says runs is proven: the deployed revision's chart."""
    cluster.load(helm_release("kube-system", "kube-state-metrics", "kube-state-metrics", "5.10.0", revision=3))
    cluster.edit("Secret", "sh.helm.release.v1.kube-state-metrics.v2", "kube-system",
                 lambda s: s["metadata"]["labels"].update(status="superseded"))
    code, last = check(capsys, cluster, loopback_only(checks["kube-state-metrics"], prometheus_url=None), minor)
    assert code == 1 and "release kube-system/kube-state-metrics: the deployed revision runs chart 5.10.0, not 5.11.1" in last
    cluster.remove("Secret", "sh.helm.release.v1.kube-state-metrics.v3", "kube-system")
    code, last = check(capsys, cluster, loopback_only(checks["kube-state-metrics"], prometheus_url=None), minor)
    assert code == 1 and "no deployed revision" in last
