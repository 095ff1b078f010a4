"""Calico through the tigera-operator chart (chart version = Calico tag).

Helm installs a chart's crds/ on install only and never upgrades them ("There is no
support at this time for upgrading or deleting CRDs using Helm",
helm.sh/docs/chart_best_practices/custom_resource_definitions/; helm/helm
pkg/action/install.go installs crds/, upgrade.go has no CRD step), and the
tigera-operator chart keeps its CRDs there: hence the CRD step.

Compatibility: each release's "Kubernetes tested" range (docs.tigera.io system
requirements per release, version-facts.md). Upgrade procedure (tigera/docs
operations/upgrading/kubernetes-upgrade, 3.28-3.30): server-side apply the
target version's `manifests/operator-crds.yaml` with --force-conflicts, then
`helm upgrade`; the operator then rolls calico-node and calico-kube-controllers
in calico-system and reports through `tigerastatus`.
"""
from kubehop.addons.base import AddonGate, AddonSpec, ChartPin, CrdBundle, GateFlag, Line
from kubehop.gates.kube import (Kubectl, KubectlError, check_probe_template, parse_ns_name, parse_pod_target, parse_time,
                               pods_started, render_probe, run_probe, running_pod_ip)

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



# --- the addon-check gate's part (python -m kubehop gate addon-check --addon ...) ----------
DEFAULT_PROBE_CMD = "nc -z -w 3 {ip} {port}"
DEFAULT_PING_CMD = "ping -c 1 -W 3 {ip}"

def tigerastatus_problems(k: Kubectl, pods: list[dict]) -> list[str]:
    """tigerastatus/calico: Available True, Progressing and Degraded False, each
    condition observed after the new pods started (operator.tigera.io/v1 TigeraStatus)."""
    try:
        obj = k.get("tigerastatuses.operator.tigera.io", "calico", kind="TigeraStatus")
    except KubectlError as exc:
        return [f"tigerastatus/calico: {exc}"]
    conditions = {c.get("type"): c for c in (obj.get("status") or {}).get("conditions") or []}
    started = pods_started(pods)
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


def _settle(args) -> None:
    if not (args.probe_from and args.probe_to):
        raise ValueError("calico needs --probe-from NS/POD and --probe-to NS/POD[:PORT] (pod-to-pod check)")
    args.probe_source = parse_ns_name(args.probe_from)
    args.probe_target = parse_pod_target(args.probe_to)
    port = args.probe_target[2]
    check_probe_template(args.probe_cmd if port else args.ping_cmd, needs_port=port is not None)


GATE = AddonGate(
    check=check_calico, summary="; tigerastatus Available, pod-to-pod probe ok", settle=_settle,
    flags=(GateFlag("--probe-from", None, {"metavar": "NS/POD", "help": "pod to run the probe in (required for calico)"}),
           GateFlag("--probe-to", None, {"metavar": "NS/POD[:PORT]", "help": "pod whose IP must be reachable (required for calico)"}),
           GateFlag("--probe-cmd", DEFAULT_PROBE_CMD, {"help": f"probe with a port, no shell (default {DEFAULT_PROBE_CMD!r})"}),
           GateFlag("--ping-cmd", DEFAULT_PING_CMD, {"help": f"probe without a port (default {DEFAULT_PING_CMD!r})"}),
           GateFlag("--probe-timeout", 30.0, {"type": float, "help": "seconds for one kubectl exec (default 30)"})),
)


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
    gate=GATE,
)
