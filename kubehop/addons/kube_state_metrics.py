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
from kubehop.addons.base import AddonSpec, ChartPin, Line, fullname

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
)
