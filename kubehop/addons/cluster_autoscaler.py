"""cluster-autoscaler (kubernetes/autoscaler charts/cluster-autoscaler).

The CA minor must equal the Kubernetes minor; charts are cut per CA minor and
default to an early patch, so kubehop sets `image.tag` (version-facts.md).
Naming (charts/cluster-autoscaler/templates/_helpers.tpl at chart 9.36.0):
name = nameOverride or `<cloudProvider>-cluster-autoscaler`; the Deployment is
fullnameOverride, else the name when it equals the release, else `<release>-<name>`.
The status ConfigMap is `cluster-autoscaler-status` in the autoscaler's namespace.
"""
from kubehop.addons.base import AddonSpec, ChartPin, Line

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
)
