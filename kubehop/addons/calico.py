"""Calico through the tigera-operator chart (chart version = Calico tag).

Compatibility: each release's "Kubernetes tested" range (docs.tigera.io system
requirements per release, version-facts.md). Upgrade procedure (tigera/docs
operations/upgrading/kubernetes-upgrade, 3.28-3.30): server-side apply the
target version's `manifests/operator-crds.yaml` with --force-conflicts, then
`helm upgrade`; the operator then rolls calico-node and calico-kube-controllers
in calico-system and reports through `tigerastatus`.
"""
from kubehop.addons.base import AddonSpec, ChartPin, CrdBundle, Line

TESTED = {  # Calico minor -> (last patch, Kubernetes tested range)
    "3.26": ("3.26.5", ("1.24", "1.28")),
    "3.27": ("3.27.5", ("1.27", "1.29")),
    "3.28": ("3.28.5", ("1.27", "1.30")),
    "3.29": ("3.29.7", ("1.29", "1.32")),
    "3.30": ("3.30.7", ("1.31", "1.35")),
}

# sha256 of manifests/operator-crds.yaml at each tag, computed from the
# projectcalico/calico git tags (`git show vX.Y.Z:manifests/operator-crds.yaml | sha256sum`),
# which is the content raw.githubusercontent.com serves for that path.
CRD_SHA256 = {
    "3.26.5": "6c7aae753e5e618b1a74076b4566732796487dde19c8252b4366e57cc61134f4",
    "3.27.5": "24b883a3cb75b24342739fe94f25fe74bfd87f0aa262cbb054ff64ca9ad3909e",
    "3.28.5": "aae1a327a88c8841dfce4747a4850d403130db9dfb1b9ea46c9428b5a6727b32",
    "3.29.7": "431f46a488a8bef14cd00f9518a85b4d02bd030680247d802a84c6f4098d0891",
    "3.30.7": "53b2e2791915809db8016b72d4ceac9d1dd529d053984eb203c06b94c6639ee3",
}

CRD_URL = "https://raw.githubusercontent.com/projectcalico/calico/v{version}/manifests/operator-crds.yaml"

# The operator's own workloads (tigera/operator renders them into calico-system).
WORKLOADS = ["daemonset/calico-node", "deployment/calico-kube-controllers"]


def _pin(minor: str) -> ChartPin:
    # newest Calico whose tested range holds the minor
    best = max((v for v, (_, (lo, hi)) in TESTED.items()
                if Line(v, v, (lo, hi)).supports(minor)), key=lambda s: tuple(map(int, s.split("."))))
    patch = TESTED[best][0]
    return ChartPin(patch, f"v{patch}", (patch, patch))


def _values(cfg, image_tag):
    # Only what the chart needs to install the operator. Nothing about the data
    # plane (bgp, encapsulation, pools): an adopted Installation keeps its own
    # (the operator refuses bgp: Disabled with IPIP pools); set it in values.
    return {"installation": {"kubernetesProvider": ""}}


def _check(cfg, addon, release, values, pin):
    args = ["--namespace", "calico-system", "--image-tag", pin.image_tag or f"v{pin.chart_version}"]
    for w in WORKLOADS:
        args += ["--workload", w]
    return args + ["--probe-from", addon.probe_from, "--probe-to", addon.probe_to]


def _requires(addon):
    if addon.probe_from and addon.probe_to:
        return []
    return [("probeFrom", "probeFrom and probeTo are required to check pod-to-pod traffic after the upgrade",
             "set probeFrom: ns/pod and probeTo: ns/pod:port (e.g. prod/chi-dcluster-0-0-0 and prod/dcluster-mysql-0:3306)")]


SPEC = AddonSpec(
    name="calico", chart="tigera-operator", repo="https://docs.tigera.io/calico/charts",
    namespace="tigera-operator", release="calico", image_repository=None,
    per_minor={m: _pin(m) for m in ("1.26", "1.27", "1.28", "1.29", "1.30", "1.31", "1.32")},
    lines=tuple(Line(f"{v}.0", patch, k8s) for v, (patch, k8s) in TESTED.items()),
    source="Calico system requirements per release (docs.tigera.io); CRDs: projectcalico/calico manifests/operator-crds.yaml per tag",
    depends_on=(),
    risk="high", impact="The pod network; a bad upgrade breaks pod-to-pod traffic across the cluster.",
    workloads=lambda release, values: list(WORKLOADS),
    workload_namespace=lambda ns, values: "calico-system",
    values=_values, check=_check, requires=_requires,
    crds={v: CrdBundle(CRD_URL.format(version=v), sha) for v, sha in CRD_SHA256.items()},
)
