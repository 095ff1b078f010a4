"""cluster-autoscaler (kubernetes/autoscaler charts/cluster-autoscaler).

The CA minor must equal the Kubernetes minor; charts are cut per CA minor and
default to an early patch, so kubehop sets `image.tag` (version-facts.md).
Naming (charts/cluster-autoscaler/templates/_helpers.tpl at chart 9.36.0):
name = nameOverride or `<cloudProvider>-cluster-autoscaler`; the Deployment is
fullnameOverride, else the name when it equals the release, else `<release>-<name>`.
The status ConfigMap is `cluster-autoscaler-status` in the autoscaler's namespace.
"""
from datetime import datetime, timezone

import yaml

from kubehop.addons.base import AddonGate, AddonSpec, ChartPin, GateFlag, Line
from kubehop.gates.kube import Kubectl, KubectlError, parse_go_time, pods_started

CHARTS = {  # minor -> (chart pin, first compatible chart, image tag)
    "1.26": ("9.28.0", "9.28.0", "v1.26.8"), "1.27": ("9.33.0", "9.29.1", "v1.27.8"),
    "1.28": ("9.34.1", "9.34.0", "v1.28.7"), "1.29": ("9.36.0", "9.35.0", "v1.29.5"),
    "1.30": ("9.37.0", "9.37.0", "v1.30.7"), "1.31": ("9.44.0", "9.38.0", "v1.31.5"),
    "1.32": ("9.46.6", "9.45.0", "v1.32.7"),
}
IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"


def deployment_name(release: str, values: dict) -> str:
    if values.get("fullnameOverride"):
        return str(values["fullnameOverride"])[:63].rstrip("-")
    name = values.get("nameOverride") or f"{values.get('cloudProvider', 'aws')}-cluster-autoscaler"
    return (name if name == release else f"{release}-{name}")[:63].rstrip("-")


def _values(cfg, image_tag):
    cluster = cfg.cluster.name
    return {"cloudProvider": "aws", "awsRegion": cfg.cluster.region,
            "image": {"repository": IMAGE, "tag": image_tag},
            "autoDiscovery": {"clusterName": cluster,
                              "tags": ["k8s.io/cluster-autoscaler/enabled", f"k8s.io/cluster-autoscaler/{cluster}"]}}


def _check(cfg, addon, release, values, pin):
    args = ["--namespace", cfg_namespace(addon), "--image-tag", pin.image_tag,
            "--workload", f"deployment/{deployment_name(release, values)}"]
    for pool in cfg.node_pools:
        args += ["--node-group", pool.asg_name]
    return args


def cfg_namespace(addon) -> str:
    return addon.namespace or "kube-system"



# --- the addon-check gate's part (python -m kubehop gate addon-check --addon ...) ----------
CA_LAST_UPDATED = "cluster-autoscaler.kubernetes.io/last-updated"

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
    started = pods_started(pods)
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


def _settle(args) -> None:
    if not args.node_group:
        raise ValueError("cluster-autoscaler needs --node-group for every pool it must manage")


GATE = AddonGate(
    check=check_cluster_autoscaler, summary="; status Healthy", settle=_settle,
    flags=(GateFlag("--status-configmap", "cluster-autoscaler-status", {"help": "status ConfigMap name (default cluster-autoscaler-status)"}),
           GateFlag("--status-max-age", 600.0, {"type": float, "help": "fail if the status was written longer ago than this many seconds (default 600; 0: no limit)"}),
           GateFlag("--node-group", [], {"action": "append", "metavar": "ASG",
                                         "help": "an Auto Scaling group the status must list (not Unhealthy); repeatable, at least one"})),
)


SPEC = AddonSpec(
    name="cluster-autoscaler", chart="cluster-autoscaler", repo="https://kubernetes.github.io/autoscaler",
    namespace="kube-system", release="cluster-autoscaler", image_repository=IMAGE,
    per_minor={m: ChartPin(c, t, (lo, c), image_minor_must_match=True) for m, (c, lo, t) in CHARTS.items()},
    lines=tuple(Line(lo, c, (m, m)) for m, (c, lo, _) in CHARTS.items()),
    source="kubernetes/autoscaler chart index + registry.k8s.io/autoscaling tags",
    depends_on=("aws-cloud-controller-manager",),
    risk="medium", impact="Scale-out/in of the ASGs; a bad upgrade stops autoscaling (check new nodes join).",
    workloads=lambda release, values: [f"deployment/{deployment_name(release, values)}"],
    values=_values, check=_check,
    gate=GATE,
)
