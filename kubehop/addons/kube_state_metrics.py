"""kube-state-metrics (prometheus-community/helm-charts charts/kube-state-metrics).

One KSM release per Kubernetes minor in the project's compatibility matrix
(version-facts.md). Naming, read in the chart at every pinned version (tags
kube-state-metrics-5.11.1, -5.16.4, -5.18.0, -5.21.0, -5.26.0, -5.29.0, -6.1.5;
the rules are the same in all): templates/_helpers.tpl `fullname` is
fullnameOverride, else the release name when it contains the name (nameOverride
or `kube-state-metrics`), else `<release>-<name>`; the workload is a Deployment,
or a StatefulSet with `autosharding.enabled` (templates/deployment.yaml), in
`namespaceOverride` or the release's namespace; its selector is
app.kubernetes.io/name + app.kubernetes.io/instance; the Service (same name)
listens on `service.port` (default 8080) as port `http` (templates/service.yaml).
The check reads /metrics through the API server's service proxy, so it works
from the machine that runs `pulumi up` (an in-cluster URL does not resolve there).
"""
import urllib.error
import urllib.parse
import urllib.request

import yaml

from kubehop.addons.base import AddonGate, AddonSpec, ChartPin, GateFlag, Line, fullname
from kubehop.gates.kube import Kubectl, KubectlError

CHARTS = {"1.26": ("5.11.1", "4.30.0"), "1.27": ("5.16.4", "5.12.0"), "1.28": ("5.18.0", "5.17.0"),
          "1.29": ("5.21.0", "5.18.1"), "1.30": ("5.26.0", "5.22.0"), "1.31": ("5.29.0", "5.27.0"),
          "1.32": ("6.1.5", "5.30.0")}


def workloads(release: str, values: dict) -> list[str]:
    kind = "statefulset" if (values.get("autosharding") or {}).get("enabled") else "deployment"
    return [f"{kind}/{fullname(release, 'kube-state-metrics', values)}"]


def _namespace(ns: str, values: dict) -> str:
    return values.get("namespaceOverride") or ns


def _check(cfg, addon, release, values, pin):
    ns = _namespace(addon.namespace or "kube-system", values)
    name = fullname(release, "kube-state-metrics", values)
    port = (values.get("service") or {}).get("port", 8080)
    args = ["--namespace", ns, "--workload", workloads(release, values)[0], "--metrics-service", f"{name}:{port}"]
    if addon.prometheus_url:
        args += ["--prometheus-url", addon.prometheus_url]
    return args



# --- the addon-check gate's part (python -m kubehop gate addon-check --addon ...) ----------
KSM_REQUIRED_SERIES = ("kube_node_info", "kube_pod_status_phase")

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


def _settle(args) -> None:
    if not args.metrics_service or ":" not in args.metrics_service:
        raise ValueError("--metrics-service NAME:PORT is required for kube-state-metrics")
    if args.prometheus_url and urllib.parse.urlsplit(args.prometheus_url).scheme not in ("http", "https"):
        raise ValueError("--prometheus-url must be an http:// or https:// URL")


GATE = AddonGate(
    check=check_kube_state_metrics, summary="; metrics served", settle=_settle,
    flags=(GateFlag("--metrics-service", None, {"metavar": "NAME:PORT", "help": "Service whose /metrics is read through the API server's service proxy (required)"}),
           GateFlag("--prometheus-url", None, {"help": "also require this Prometheus's kube-state-metrics scrape target up"}),
           GateFlag("--http-timeout", 10.0, {"type": float, "help": "seconds per HTTP request (default 10)"})),
)


SPEC = AddonSpec(
    name="kube-state-metrics", chart="kube-state-metrics",
    repo="https://prometheus-community.github.io/helm-charts", namespace="kube-system",
    release="kube-state-metrics", image_repository=None,
    per_minor={m: ChartPin(c, None, (lo, c)) for m, (c, lo) in CHARTS.items()},
    lines=tuple(Line(lo, c, (m, m)) for m, (c, lo) in CHARTS.items()),
    source="prometheus-community/helm-charts kube-state-metrics compatibility table",
    depends_on=("aws-cloud-controller-manager",),
    risk="low", impact="Feeds Prometheus/Grafana; a bad upgrade blanks dashboards, no business impact.",
    workloads=workloads, workload_namespace=_namespace,
    values=lambda cfg, image_tag: {},
    check=_check,
    gate=GATE,
)
