"""AWS cloud-controller-manager (kubernetes/cloud-provider-aws charts/aws-cloud-controller-manager).

The image minor must equal the Kubernetes minor (skew policy; kubernetes/k8s.io
images.yaml has one line per minor). Chart 0.0.8 (appVersion v1.27.1) serves
1.26-1.32 with `image.tag` set; 0.0.9+ default to v1.33+. At 0.0.8 the chart
names its DaemonSet `.Values.nameOverride` (default aws-cloud-controller-manager)
and puts it in `.Values.namespace` (default kube-system), not the release's
namespace (templates/daemonset.yaml, _helpers.tpl, values.yaml at chart 0.0.8).
"""
from kubehop.addons.base import AddonGate, AddonSpec, ChartPin, GateFlag, Line
from kubehop.gates.kube import Kubectl, KubectlError, name_of, parse_ns_name, parse_time, pods_started, taint_keys

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



# --- the addon-check gate's part (python -m kubehop gate addon-check --addon ...) ----------
UNINITIALIZED_TAINT = "node.cloudprovider.kubernetes.io/uninitialized"

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
    renewed, started = parse_time(spec["renewTime"]), pods_started(pods)
    if started is not None and renewed < started:
        return [f"lease {lease}: last renewed {renewed.isoformat()}, before the new pods started ({started.isoformat()})"]
    return []


GATE = AddonGate(
    check=check_ccm, summary="; nodes initialised, leader lease renewed",
    flags=(GateFlag("--lease", options={"metavar": "NS/NAME", "help": "leader Lease that must be renewed after the pods started"}),),
)


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
    gate=GATE,
)
