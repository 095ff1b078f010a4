"""AWS cloud-controller-manager (kubernetes/cloud-provider-aws charts/aws-cloud-controller-manager).

The image minor must equal the Kubernetes minor (skew policy; kubernetes/k8s.io
images.yaml has one line per minor). Chart 0.0.8 (appVersion v1.27.1) serves
1.26-1.32 with `image.tag` set; 0.0.9+ default to v1.33+. At 0.0.8 the chart
names its DaemonSet `.Values.nameOverride` (default aws-cloud-controller-manager)
and puts it in `.Values.namespace` (default kube-system), not the release's
namespace (templates/daemonset.yaml, _helpers.tpl, values.yaml at chart 0.0.8).
"""
from kubehop.addons.base import AddonSpec, ChartPin, Line

TAGS = {"1.26": "v1.26.14", "1.27": "v1.27.10", "1.28": "v1.28.11", "1.29": "v1.29.10",
        "1.30": "v1.30.10", "1.31": "v1.31.9", "1.32": "v1.32.8"}
IMAGE = "registry.k8s.io/provider-aws/cloud-controller-manager"
# k8s.io/cloud-provider options: leader election lease `cloud-controller-manager` in kube-system.
LEASE = "kube-system/cloud-controller-manager"


def _values(cfg, image_tag):
    return {"image": {"repository": IMAGE, "tag": image_tag},
            "args": ["--v=2", "--cloud-provider=aws", f"--cluster-name={cfg.cluster.name}"],
            "nodeSelector": {"node-role.kubernetes.io/control-plane": ""}}


def _check(cfg, addon, release, values, pin):
    ns = values.get("namespace") or "kube-system"
    args = ["--namespace", ns, "--image-tag", pin.image_tag, "--lease", LEASE]
    for w in SPEC.workloads(release, values):
        args += ["--workload", w]
    return args


SPEC = AddonSpec(
    name="aws-cloud-controller-manager", chart="aws-cloud-controller-manager",
    repo="https://kubernetes.github.io/cloud-provider-aws", namespace="kube-system",
    release="aws-cloud-controller-manager", image_repository=IMAGE,
    per_minor={m: ChartPin("0.0.8", t, ("0.0.8", "0.0.8"), image_minor_must_match=True) for m, t in TAGS.items()},
    lines=(Line("0.0.8", "0.0.8", ("1.26", "1.32")),),
    source="kubernetes/cloud-provider-aws chart index + kubernetes/k8s.io images.yaml",
    depends_on=("calico",),
    risk="high", impact="Node initialisation and ELB/route management; a bad upgrade blocks every new node from becoming Ready and disturbs load balancers.",
    workloads=lambda release, values: [f"daemonset/{values.get('nameOverride') or 'aws-cloud-controller-manager'}"],
    workload_namespace=lambda ns, values: values.get("namespace") or "kube-system",
    values=_values, check=_check,
)
