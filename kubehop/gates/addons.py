"""`addon-check`: is an addon rolled out, Ready, and doing its job? (runbook 2, 6.3.2, 6.4.2)

Common to every addon: each --workload (Deployment/DaemonSet/StatefulSet in
--namespace) has observed its latest generation and has every replica updated,
ready and available; the pods it selects are Running and Ready; with
--image-tag, the pod template's images carry that tag (v1.27 matches any
v1.27.x, so CA/CCM can be pinned to the Kubernetes minor).

With --release NS/NAME and --chart-version, the release's deployed revision runs that
chart version (its Helm storage Secret): what the recorded state says the addon runs
comes from this check having passed (kubehop/record.py).

Then, per addon:
  aws-cloud-controller-manager  every node initialised (no uninitialized taint,
                                has spec.providerID); --lease renewed after the
                                new pods started
  cluster-autoscaler            status ConfigMap says cluster-wide Healthy, lists
                                every --node-group and none Unhealthy, written by the running
                                autoscaler, no older than --status-max-age
  kube-state-metrics            --metrics-service's /metrics, read through the API
                                server's service proxy, has kube_node_info and
                                kube_pod_status_phase samples; with --prometheus-url
                                its scrape target is up
  ingress-nginx                 the controller --service has a LoadBalancer address
  calico                        tigerastatus/calico Available, not Progressing or
                                Degraded; --probe-from pod reaches --probe-to pod's IP
  generic (and any addon module  the common checks only
  with no check here)
"""
from __future__ import annotations

import argparse
import base64
import gzip
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone

import yaml

from kubehop.addons import SPECS
from kubehop.gates.common import Verdict, add_poll_arguments, poll
from kubehop.gates.http_check import look, parse_url_check
from kubehop.gates.kube import (
    Kubectl,
    KubectlError,
    add_kubectl_arguments,
    check_probe_template,
    image_tag,
    is_terminating,
    kubectl_from_args,
    name_list,
    name_of,
    ns_name,
    parse_go_time,
    parse_pod_target,
    parse_ns_name,
    parse_time,
    parse_workload,
    pod_ready,
    render_probe,
    run_probe,
    running_pod_ip,
    selector_matches,
    selector_string,
    taint_keys,
    template_images,
    version_matches,
    workload_rolled_out,
)

# Every addon module's name (kubehop/addons/), and `generic`: an addon with no check of its
# own below gets the common checks (workloads, image tag, deployed chart) only.
ADDONS = (*SPECS, "generic")

UNINITIALIZED_TAINT = "node.cloudprovider.kubernetes.io/uninitialized"
CA_LAST_UPDATED = "cluster-autoscaler.kubernetes.io/last-updated"
KSM_REQUIRED_SERIES = ("kube_node_info", "kube_pod_status_phase")

DEFAULT_PROBE_CMD = "nc -z -w 3 {ip} {port}"
DEFAULT_PING_CMD = "ping -c 1 -W 3 {ip}"

# Flags that only mean something for one addon: (dest, addons it applies to, default).
EXTRAS = {
    "status_configmap": (("cluster-autoscaler",), "cluster-autoscaler-status"),
    "status_max_age": (("cluster-autoscaler",), 600.0),
    "metrics_service": (("kube-state-metrics",), None),
    "prometheus_url": (("kube-state-metrics",), None),
    "node_group": (("cluster-autoscaler",), []),
    "lease": (("aws-cloud-controller-manager",), None),
    "http_timeout": (("kube-state-metrics",), 10.0),
    "service": (("ingress-nginx",), "ingress-nginx-controller"),
    "url": (("ingress-nginx",), []),
    "probe_from": (("calico",), None),
    "probe_to": (("calico",), None),
    "probe_cmd": (("calico",), DEFAULT_PROBE_CMD),
    "ping_cmd": (("calico",), DEFAULT_PING_CMD),
    "probe_timeout": (("calico",), 30.0),
}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "addon-check",
        help="an addon's workloads are rolled out and Ready, and it works",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--addon", required=True, choices=ADDONS)
    p.add_argument("--namespace", required=True, help="namespace of the addon's workloads")
    p.add_argument(
        "--workload", action="append", required=True, metavar="KIND/NAME",
        help="deployment/NAME, daemonset/NAME or statefulset/NAME; repeatable",
    )
    p.add_argument("--image-tag", help="every workload's template images carry this tag (v1.27 = any v1.27.x)")
    p.add_argument("--container", help="with --image-tag: check only this container of each template")
    p.add_argument("--release", metavar="NS/NAME", help="the Helm release whose deployed revision must run --chart-version")
    p.add_argument("--chart-version", help="with --release: the chart version the deployed revision must run")
    ca = p.add_argument_group("cluster-autoscaler")
    ca.add_argument("--status-configmap", help="status ConfigMap name (default cluster-autoscaler-status)")
    ca.add_argument(
        "--status-max-age", type=float,
        help="fail if the status was written longer ago than this many seconds (default 600; 0: no limit)",
    )
    ksm = p.add_argument_group("kube-state-metrics")
    ksm.add_argument("--metrics-service", metavar="NAME:PORT",
                     help="Service whose /metrics is read through the API server's service proxy (required)")
    ksm.add_argument("--prometheus-url", help="also require this Prometheus's kube-state-metrics scrape target up")
    ca.add_argument("--node-group", action="append", metavar="ASG",
                    help="an Auto Scaling group the status must list (not Unhealthy); repeatable, at least one")
    p.add_argument("--lease", metavar="NS/NAME", help="CCM: leader Lease that must be renewed after the pods started")
    ksm.add_argument("--http-timeout", type=float, help="seconds per HTTP request (default 10)")
    ing = p.add_argument_group("ingress-nginx")
    ing.add_argument("--service", help="controller Service name (default ingress-nginx-controller)")
    ing.add_argument("--url", action="append", type=parse_url_check, metavar="NAME=URL=STATUS[,STATUS]",
                     help="a URL served through the ingress (Grafana, Loki, Jumpserver) and the status it must answer; repeatable")
    cal = p.add_argument_group("calico")
    cal.add_argument("--probe-from", metavar="NS/POD", help="pod to run the probe in (required for calico)")
    cal.add_argument("--probe-to", metavar="NS/POD[:PORT]", help="pod whose IP must be reachable (required for calico)")
    cal.add_argument("--probe-cmd", help=f"probe with a port, no shell (default {DEFAULT_PROBE_CMD!r})")
    cal.add_argument("--ping-cmd", help=f"probe without a port (default {DEFAULT_PING_CMD!r})")
    cal.add_argument("--probe-timeout", type=float, help="seconds for one kubectl exec (default 30)")
    add_kubectl_arguments(p)
    add_poll_arguments(p, timeout=300, interval=10)
    p.set_defaults(func=run_addon_check, _parser=p)


def _settle_arguments(args) -> None:
    """Reject flags for the wrong addon, fill defaults, check required extras (exit 2)."""
    parser = args._parser
    for dest, (addons, default) in EXTRAS.items():
        value = getattr(args, dest)
        if value is not None and args.addon not in addons:
            parser.error(f"--{dest.replace('_', '-')} applies to {', '.join(addons)}, not {args.addon}")
        if value is None:
            setattr(args, dest, default)
    try:
        args.workloads = [parse_workload(w) for w in args.workload]
    except ValueError as exc:
        parser.error(str(exc))
    if args.container and not args.image_tag:
        parser.error("--container only narrows --image-tag")
    if bool(args.release) != bool(args.chart_version):
        parser.error("--release and --chart-version go together")
    if args.release:
        try:
            args.release_ref = parse_ns_name(args.release, "release")
        except ValueError as exc:
            parser.error(str(exc))
    if args.addon == "kube-state-metrics":
        if not args.metrics_service or ":" not in args.metrics_service:
            parser.error("--metrics-service NAME:PORT is required for kube-state-metrics")
        if args.prometheus_url and urllib.parse.urlsplit(args.prometheus_url).scheme not in ("http", "https"):
            parser.error("--prometheus-url must be an http:// or https:// URL")
    if args.addon == "cluster-autoscaler" and not args.node_group:
        parser.error("cluster-autoscaler needs --node-group for every pool it must manage")
    if args.addon == "calico":
        if not (args.probe_from and args.probe_to):
            parser.error("calico needs --probe-from NS/POD and --probe-to NS/POD[:PORT] (pod-to-pod check)")
        try:
            args.probe_source = parse_ns_name(args.probe_from)
            args.probe_target = parse_pod_target(args.probe_to)
            port = args.probe_target[2]
            check_probe_template(args.probe_cmd if port else args.ping_cmd, needs_port=port is not None)
        except ValueError as exc:
            parser.error(str(exc))


def run_addon_check(args) -> str:
    _settle_arguments(args)
    k = kubectl_from_args(args)

    def look() -> Verdict:
        problems: list[str] = []
        pods: list[dict] = []
        for resource, kind, name in args.workloads:
            found, workload_pods = check_workload(
                k, args.namespace, resource, kind, name, image=args.image_tag, container=args.container
            )
            problems += found
            pods += workload_pods
        try:
            if args.release:
                problems += release_runs(k, *args.release_ref, args.chart_version)
            problems += ADDON_CHECKS.get(args.addon, check_nothing)(k, args, pods)
        except KubectlError as exc:
            problems.append(f"{args.addon}: {exc}")
        if problems:
            return Verdict(False, name_list(problems))
        names = ", ".join(f"{kind.lower()}/{name}" for _, kind, name in args.workloads)
        return Verdict(True, f"{args.addon}: {names} rolled out and Ready{SUMMARY.get(args.addon, '')}")

    verdict = poll(
        f"addon-check {args.addon}", look, timeout=args.timeout, interval=args.interval, out=sys.stderr
    )
    return verdict.detail


# --- common --------------------------------------------------------------------------------

def check_workload(
    k: Kubectl, ns: str, resource: str, kind: str, name: str, *, image: str | None, container: str | None
) -> tuple[list[str], list[dict]]:
    """(problems naming the workload or its pods, the workload's live pods)."""
    label = f"{kind.lower()}/{name}"
    try:
        obj = k.get(resource, name, kind=kind, namespace=ns)
    except KubectlError as exc:
        return [f"{label}: {exc}"], []
    problems = []
    ok, detail = workload_rolled_out(obj)
    if not ok:
        problems.append(f"{label} in {ns}: {detail}")
    if image:
        images = template_images(obj, container)
        if not images:
            problems.append(f"{label}: no container {container!r} in the pod template" if container
                            else f"{label}: pod template has no containers")
        for cname, ref in images:
            if not version_matches(image_tag(ref), image):
                problems.append(f"{label} container {cname}: image {ref} is not tag {image}")
    selector = (obj.get("spec") or {}).get("selector") or {}
    try:
        listed = k.items("pods", kind="Pod", namespace=ns, selector=selector_string(selector))
    except KubectlError as exc:
        return problems + [f"{label} pods: {exc}"], []
    pods = [p for p in listed if selector_matches(selector, p["metadata"].get("labels") or {}) and not is_terminating(p)]
    if not pods:
        problems.append(f"{label}: no pods")
    for pod in pods:
        ready, why = pod_ready(pod)
        if not ready:
            problems.append(f"pod {ns_name(pod)}: {why}")
    return problems, pods


def release_runs(k: Kubectl, ns: str, name: str, chart_version: str) -> list[str]:
    """The release's deployed revision runs `chart_version`.

    Helm 3's default storage (driver "secret", also pulumi-kubernetes' Release unless
    helmReleaseSettings.driver says otherwise) keeps each revision in a Secret of type
    helm.sh/release.v1 labelled owner=helm, name=<release>, status=<status>,
    version=<revision>; data.release is base64 of the gzipped JSON release, whose
    chart.metadata.version is the chart's version (helm/helm pkg/storage/driver/
    secrets.go newSecretsObject, util.go encodeRelease). tigera-operator's chart
    versions carry a leading v (Chart.yaml `version: v3.28.5`), hence the lstrip."""
    label = f"release {ns}/{name}"
    found = k.items("secrets", kind="Secret", namespace=ns, selector=f"owner=helm,name={name},status=deployed")
    if not found:
        return [f"{label}: no deployed revision (no Helm release Secret with status=deployed)"]
    newest = max(found, key=lambda s: int((s["metadata"].get("labels") or {}).get("version") or 0))
    try:
        doc = json.loads(_helm_release_bytes((newest.get("data") or {})["release"]))
        running = str(doc["chart"]["metadata"]["version"])
    except (KeyError, TypeError, ValueError, OSError) as exc:
        return [f"{label}: cannot read the release from Secret {name_of(newest)} ({exc})"]
    if running.lstrip("v") != chart_version.lstrip("v"):
        return [f"{label}: the deployed revision runs chart {running}, not {chart_version}"]
    return []


def _helm_release_bytes(data: str) -> bytes:
    """Secret data (base64) -> Helm's base64 text -> gzip (or, from old Helm, plain JSON)."""
    inner = base64.b64decode(base64.b64decode(data))
    return gzip.decompress(inner) if inner[:3] == b"\x1f\x8b\x08" else inner


# --- aws-cloud-controller-manager ----------------------------------------------------------

def lb_address(svc: dict) -> str | None:
    for entry in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        if isinstance(entry, dict) and (entry.get("hostname") or entry.get("ip")):
            return entry.get("hostname") or entry.get("ip")
    return None


def check_ccm(k: Kubectl, args, pods: list[dict]) -> list[str]:
    problems = []
    nodes = k.items("nodes", kind="Node")
    if not nodes:
        problems.append("no nodes listed")
    for node in nodes:
        if UNINITIALIZED_TAINT in taint_keys(node):
            problems.append(f"node {name_of(node)}: still has taint {UNINITIALIZED_TAINT}")
        if not (node.get("spec") or {}).get("providerID"):
            problems.append(f"node {name_of(node)}: no spec.providerID")
    if args.lease:
        problems += lease_renewed(k, args.lease, pods)
    return problems


def lease_renewed(k: Kubectl, lease: str, pods: list[dict]) -> list[str]:
    """A running CCM holds its leader Lease and renews it (coordination.k8s.io/v1
    spec.holderIdentity, spec.renewTime): renewed after the newest pod started."""
    ns, name = parse_ns_name(lease, "lease")
    try:
        obj = k.get("leases.coordination.k8s.io", name, kind="Lease", namespace=ns)
    except KubectlError as exc:
        return [f"lease {lease}: {exc}"]
    spec = obj.get("spec") or {}
    if not spec.get("holderIdentity") or not spec.get("renewTime"):
        return [f"lease {lease}: no holder"]
    renewed, started = parse_time(spec["renewTime"]), _pods_started(pods)
    if started is not None and renewed < started:
        return [f"lease {lease}: last renewed {renewed.isoformat()}, before the new pods started ({started.isoformat()})"]
    return []


# --- cluster-autoscaler --------------------------------------------------------------------

def parse_ca_status(text: str) -> dict:
    """{'health': str|None, 'groups': [(name, health)], 'autoscaler': str|None, 'time': str|None}.

    Reads both the classic text ("Cluster-wide:\\n  Health: Healthy (...)") and
    the YAML form of newer releases ("clusterWide:\\n  health:\\n    status: Healthy").
    """
    result = {"health": None, "groups": [], "autoscaler": None, "time": None}
    if "Cluster-wide:" in text:
        section = None
        group = None
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("Cluster-autoscaler status at "):
                result["time"] = line[len("Cluster-autoscaler status at "):].rstrip(":")
            elif line == "Cluster-wide:":
                section = "cluster"
            elif line == "NodeGroups:":
                section = "groups"
            elif line.startswith("Name:") and section == "groups":
                group = line[len("Name:"):].strip()
            elif line.startswith("Health:"):
                words = line[len("Health:"):].split()
                health = words[0] if words else ""
                if section == "cluster" and result["health"] is None:
                    result["health"] = health
                elif section == "groups" and group is not None:
                    result["groups"].append((group, health))
                    group = None
        return result
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return result
    if not isinstance(doc, dict):
        return result
    result["autoscaler"] = doc.get("autoscalerStatus")
    result["time"] = str(doc["time"]) if doc.get("time") is not None else None
    health = ((doc.get("clusterWide") or {}).get("health") or {})
    if isinstance(health, dict):
        result["health"] = health.get("status")
    for group in doc.get("nodeGroups") or []:
        if isinstance(group, dict):
            result["groups"].append((str(group.get("name")), ((group.get("health") or {}).get("status"))))
    return result


def _pods_started(pods: list[dict]) -> datetime | None:
    """When the newest running container of these pods started."""
    starts = []
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            started = ((cs.get("state") or {}).get("running") or {}).get("startedAt")
            if started:
                starts.append(parse_time(started))
    return max(starts) if starts else None


def check_cluster_autoscaler(k: Kubectl, args, pods: list[dict]) -> list[str]:
    name = f"configmap {args.namespace}/{args.status_configmap}"
    try:
        cm = k.get("configmaps", args.status_configmap, kind="ConfigMap", namespace=args.namespace)
    except KubectlError as exc:
        return [f"{name}: {exc}"]
    text = (cm.get("data") or {}).get("status")
    if not isinstance(text, str) or not text.strip():
        return [f"{name}: no data.status"]
    status = parse_ca_status(text)
    problems = []
    if status["health"] is None:
        problems.append(f"{name}: no cluster-wide health found in data.status")
    elif status["health"] != "Healthy":
        problems.append(f"cluster-autoscaler reports cluster-wide health {status['health']}")
    if status["autoscaler"] not in (None, "Running"):
        problems.append(f"cluster-autoscaler status is {status['autoscaler']}, not Running")
    # The status omits the node-group section when no group was discovered and
    # cluster-wide health stays Healthy (kubernetes/autoscaler clusterstate/api/utils.go).
    listed = dict(status["groups"])
    for group, health in status["groups"]:
        if health == "Unhealthy":
            problems.append(f"cluster-autoscaler node group {group}: Unhealthy")
    for group in args.node_group:
        if group not in listed:
            problems.append(f"cluster-autoscaler does not list node group {group} (auto-discovery tags or IAM?)")
    stamp = (cm["metadata"].get("annotations") or {}).get(CA_LAST_UPDATED) or status["time"]
    try:
        written = parse_go_time(stamp or "")
    except ValueError:
        return problems + [f"{name}: cannot tell when the status was written ({stamp!r})"]
    started = _pods_started(pods)
    if started is not None and written < started:
        problems.append(
            f"{name}: status written {written.isoformat()} before the running autoscaler started "
            f"({started.isoformat()}): not yet refreshed"
        )
    if args.status_max_age and args.status_max_age > 0:
        age = (datetime.now(timezone.utc) - written).total_seconds()
        if age > args.status_max_age:
            problems.append(f"{name}: status is {age:.0f}s old (limit {args.status_max_age:g}s)")
    return problems


# --- kube-state-metrics --------------------------------------------------------------------

def metric_names(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0].strip())
    return names


def check_kube_state_metrics(k: Kubectl, args, pods: list[dict]) -> list[str]:
    """/metrics read through the API server's service proxy
    (GET /api/v1/namespaces/NS/services/NAME:PORT/proxy/metrics), which works from
    wherever `pulumi up` runs; then, when given, Prometheus's own view of the target."""
    path = f"/api/v1/namespaces/{args.namespace}/services/{args.metrics_service}/proxy/metrics"
    try:
        text = k.raw(path)
    except KubectlError as exc:
        return [f"{path}: {exc}"]
    missing = set(KSM_REQUIRED_SERIES) - metric_names(text)
    if missing:
        return [f"{path}: no {', '.join(sorted(missing))} samples"]
    if args.prometheus_url:
        return prometheus_target_up(args.prometheus_url, args.metrics_service.split(":", 1)[0], args.http_timeout)
    return []


def prometheus_target_up(url: str, job_hint: str, timeout: float) -> list[str]:
    """Prometheus /api/v1/targets lists an active target for KSM with health "up"
    (Prometheus HTTP API, `activeTargets[].health`, `labels`)."""
    api = url.rstrip("/") + "/api/v1/targets?state=active"
    try:
        with urllib.request.urlopen(api, timeout=timeout) as resp:
            doc = yaml.safe_load(resp.read().decode())
    except (urllib.error.URLError, OSError, ValueError, yaml.YAMLError) as exc:
        return [f"{api}: {getattr(exc, 'reason', exc)}"]
    targets = [t for t in ((doc or {}).get("data") or {}).get("activeTargets") or []
               if job_hint in " ".join(str(v) for v in (t.get("labels") or {}).values())]
    if not targets:
        return [f"{api}: no active target for {job_hint}"]
    down = [t.get("scrapeUrl", "?") for t in targets if t.get("health") != "up"]
    return [f"Prometheus target {u} for {job_hint} is not up" for u in down]


# --- ingress-nginx -------------------------------------------------------------------------

def check_ingress_nginx(k: Kubectl, args, pods: list[dict]) -> list[str]:
    label = f"service {args.namespace}/{args.service}"
    try:
        svc = k.get("services", args.service, kind="Service", namespace=args.namespace)
    except KubectlError as exc:
        return [f"{label}: {exc}"]
    kind = (svc.get("spec") or {}).get("type")
    if kind != "LoadBalancer":
        return [f"{label}: type {kind}, not LoadBalancer"]
    if not lb_address(svc):
        return [f"{label}: LoadBalancer has no status.loadBalancer.ingress address"]
    if args.url:
        verdict = look(args.url, timeout=10, verify=True, follow_redirects=False)
        if not verdict.ok:
            return [f"ingress URLs: {verdict.detail}"]
    return []


# --- calico --------------------------------------------------------------------------------

def tigerastatus_problems(k: Kubectl, pods: list[dict]) -> list[str]:
    """tigerastatus/calico: Available True, Progressing and Degraded False, each
    condition observed after the new pods started (operator.tigera.io/v1 TigeraStatus)."""
    try:
        obj = k.get("tigerastatuses.operator.tigera.io", "calico", kind="TigeraStatus")
    except KubectlError as exc:
        return [f"tigerastatus/calico: {exc}"]
    conditions = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}
    started = _pods_started(pods)
    problems = []
    for ctype, want in (("Available", "True"), ("Progressing", "False"), ("Degraded", "False")):
        cond = conditions.get(ctype)
        if cond is None or cond.get("status") != want:
            problems.append(f"tigerastatus/calico: {ctype} is {cond.get('status') if cond else 'missing'}, not {want}")
        elif started and cond.get("lastTransitionTime") and parse_time(cond["lastTransitionTime"]) < started \
                and ctype == "Available":
            problems.append("tigerastatus/calico: Available since before the new pods started: not observed after the release")
    return problems


def check_calico(k: Kubectl, args, pods: list[dict]) -> list[str]:
    problems = tigerastatus_problems(k, pods)
    if problems:
        return problems
    src_ns, src_pod = args.probe_source
    dst_ns, dst_pod, port = args.probe_target
    label = f"pod-to-pod {src_ns}/{src_pod} -> {dst_ns}/{dst_pod}" + (f":{port}" if port else "")
    try:
        ip = running_pod_ip(k, dst_ns, dst_pod)
    except KubectlError as exc:
        return [f"{label}: {exc}"]
    argv = render_probe(args.probe_cmd if port else args.ping_cmd, address=ip, port=port)
    ok, detail = run_probe(k, src_ns, src_pod, argv, timeout=args.probe_timeout)
    return [] if ok else [f"{label} ({ip}): {detail}"]


def check_nothing(k: Kubectl, args, pods: list[dict]) -> list[str]:
    return []


ADDON_CHECKS = {
    "aws-cloud-controller-manager": check_ccm,
    "cluster-autoscaler": check_cluster_autoscaler,
    "kube-state-metrics": check_kube_state_metrics,
    "ingress-nginx": check_ingress_nginx,
    "calico": check_calico,
    "generic": check_nothing,
}

SUMMARY = {
    "aws-cloud-controller-manager": "; nodes initialised, leader lease renewed",
    "cluster-autoscaler": "; status Healthy",
    "kube-state-metrics": "; metrics served",
    "ingress-nginx": "; controller LoadBalancer has an address",
    "calico": "; tigerastatus Available, pod-to-pod probe ok",
    "generic": "",
}
