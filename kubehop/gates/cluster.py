"""Cluster-wide checks after each step (runbook 6.3.1, 6.3.3, 6.3.4, 6.4.4).

  nodes      every node Ready, kubelet at the expected version for its role,
             none cordoned unless --allow-cordoned
  pods       no container in CrashLoopBackOff/ImagePullBackOff/ErrImagePull
             (or CreateContainerConfigError/InvalidImageName); at most
             --max-pending pods Pending longer than --pending-grace
  endpoints  each --service has ready addresses
  network    connectivity paths, each probed with `kubectl exec` (no shell):
             pod -> pod, pod -> external host:port, node -> pod

Node -> pod: kubectl cannot exec "on a node", so the node's network namespace
is reached through a hostNetwork pod on that node, chosen by
--node-probe-pods NS/SELECTOR (e.g. a DaemonSet of busybox with
hostNetwork: true and `sleep` as its command; calico-node pods are hostNetwork
too but their image may lack the probe tool). The gate refuses a probe pod
that is not hostNetwork, so a node path can never silently test pod -> pod.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime, timezone

from kubehop import node_labels
from kubehop.node_labels import POOL_LABEL
from kubehop.gates.common import Verdict, add_poll_arguments, poll
from kubehop.gates.kube import (
    Kubectl,
    KubectlError,
    add_kubectl_arguments,
    bad_waiting_reasons,
    check_probe_template,
    condition,
    is_control_plane,
    is_cordoned,
    is_terminating,
    kubectl_from_args,
    kubelet_version,
    name_list,
    name_of,
    node_ready,
    ns_name,
    parse_ns_name,
    parse_port,
    parse_pod_target,
    parse_time,
    pod_ready,
    render_probe,
    run_probe,
    running_pod_ip,
    version_matches,
)

DEFAULT_PROBE_CMD = "nc -z -w 3 {ip} {port}"
DEFAULT_PING_CMD = "ping -c 1 -W 3 {ip}"


def _common(p, *, timeout: float = 300, interval: float = 10) -> None:
    add_kubectl_arguments(p)
    add_poll_arguments(p, timeout=timeout, interval=interval)


def register(subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter

    p = subparsers.add_parser("nodes", help="every node Ready at the expected kubelet version", formatter_class=fmt)
    p.add_argument("--control-plane-version", metavar="vX.Y.Z",
                   help="kubeletVersion of nodes labelled node-role.kubernetes.io/control-plane (vX.Y = any patch)")
    p.add_argument("--worker-version", metavar="vX.Y.Z", help="kubeletVersion of every other node")
    p.add_argument("--pool-version", action="append", default=[], type=_pool_version, metavar="POOL=vX.Y.Z",
                   help=f"nodes labelled {POOL_LABEL}=POOL run this kubelet instead (a pool that rolls after "
                        "serving); a worker node with no pool label may then run either (adopted, not rolled yet)")
    p.add_argument("--allow-cordoned", action="store_true", help="do not fail on spec.unschedulable nodes")
    p.add_argument("--selector", help="only nodes matching this label selector")
    p.add_argument("--min-nodes", type=int, default=1, help="fail with fewer nodes than this (default 1)")
    _common(p)
    p.set_defaults(func=run_nodes, _parser=p)

    p = subparsers.add_parser("pods", help="no crash-looping or image-pull-failing pods, few long-Pending", formatter_class=fmt)
    p.add_argument("--namespaces", action="append", metavar="NS[,NS...]", help="only these namespaces (default: all)")
    p.add_argument("--pending-grace", type=float, default=300, help="seconds a pod may be Pending (default 300)")
    p.add_argument("--max-pending", type=int, default=0, help="pods Pending past the grace allowed (default 0)")
    _common(p)
    p.set_defaults(func=run_pods, _parser=p)

    p = subparsers.add_parser("endpoints", help="each Service has ready endpoint addresses", formatter_class=fmt)
    p.add_argument("--service", action="append", required=True, metavar="NS/NAME", help="repeatable")
    _common(p)
    p.set_defaults(func=run_endpoints, _parser=p)

    p = subparsers.add_parser("network", help="pod->pod, pod->external and node->pod probes",
                              description=__doc__, formatter_class=fmt)
    p.add_argument("--path", action="append", default=[], metavar="NAME=from:NS/POD,to:TARGET",
                   help="TARGET is NS/POD[:PORT] or HOST:PORT; repeatable")
    p.add_argument("--node-path", action="append", default=[], metavar="NAME=from:NODE,to:NS/POD[:PORT]",
                   help="probe from NODE's network namespace (see --node-probe-pods); repeatable")
    p.add_argument("--node-probe-pods", metavar="NS/SELECTOR",
                   help="hostNetwork pods, one per node, to probe from for --node-path, e.g. kube-system/app=netprobe")
    p.add_argument("--probe-cmd", default=DEFAULT_PROBE_CMD,
                   help="command for targets with a port; {ip} and {port} filled in (default %(default)r)")
    p.add_argument("--ping-cmd", default=DEFAULT_PING_CMD,
                   help="command for pod targets without a port (default %(default)r)")
    p.add_argument("--probe-timeout", type=float, default=30, help="seconds for one kubectl exec (default 30)")
    _common(p)
    p.set_defaults(func=run_network, _parser=p)


# --- nodes ---------------------------------------------------------------------------------

def _pool_version(text: str) -> tuple[str, str]:
    pool, sep, version = text.partition("=")
    if not sep or not node_labels.LABEL_RE.match(pool) or not version.startswith("v"):
        raise argparse.ArgumentTypeError("must be POOL=vX.Y.Z (a pool name and a kubelet version)")
    return pool, version


def _worker_versions(node: dict, default: str | None, pools: dict[str, str]) -> list[str]:
    """The kubelet versions a worker node may run. A node with no pool label came from an
    adopted template, so which pool it is in cannot be told from the node: while a pool waits
    it may run either version. Each pool's rollout wait still proves, by its Auto Scaling
    group, that every instance of a pool that rolled runs the new image and kubelet."""
    pool = ((node.get("metadata") or {}).get("labels") or {}).get(POOL_LABEL)
    if pool in pools:
        return [pools[pool]]
    if pool is None and pools:
        return [v for v in (default, *sorted(set(pools.values()))) if v]
    return [default] if default else []


def run_nodes(args) -> str:
    k = kubectl_from_args(args)
    expected = {True: args.control_plane_version, False: args.worker_version}
    pools = dict(args.pool_version)

    def look() -> Verdict:
        nodes = k.items("nodes", kind="Node", selector=args.selector)
        problems = []
        if len(nodes) < args.min_nodes:
            problems.append(f"{len(nodes)} node(s) listed, want at least {args.min_nodes}")
        for control_plane in (True, False):
            if expected[control_plane] and not any(is_control_plane(n) == control_plane for n in nodes):
                problems.append(f"no {'control-plane' if control_plane else 'worker'} nodes listed")
        for node in nodes:
            cp = is_control_plane(node)
            role = "control-plane" if cp else "worker"
            why = []
            ready, state = node_ready(node)
            if not ready:
                why.append(state)
            version = kubelet_version(node)
            allowed = [expected[cp]] if cp else _worker_versions(node, expected[cp], pools)
            allowed = [v for v in allowed if v]
            if allowed and not any(version_matches(version, v) for v in allowed):
                why.append(f"kubelet {version or 'unknown'}, want {' or '.join(allowed)}")
            if is_cordoned(node) and not args.allow_cordoned:
                why.append("cordoned (spec.unschedulable)")
            if why:
                problems.append(f"{role} {name_of(node)}: {', '.join(why)}")
        if problems:
            return Verdict(False, name_list(problems))
        cps = sum(1 for n in nodes if is_control_plane(n))
        return Verdict(True, f"{len(nodes)} nodes Ready ({cps} control-plane, {len(nodes) - cps} worker)")

    return poll("nodes", look, timeout=args.timeout, interval=args.interval, out=sys.stderr).detail


# --- pods ----------------------------------------------------------------------------------

def _namespaces(values: list[str] | None) -> list[str]:
    return [ns.strip() for value in values or [] for ns in value.split(",") if ns.strip()]


def _pending_reason(pod: dict) -> str:
    scheduled = condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") != "True":
        reason = scheduled.get("reason") or "not scheduled"
        message = (scheduled.get("message") or "").strip()
        return f"{reason}: {message[:120]}" if message else reason
    waiting = [
        ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        for cs in ((pod.get("status") or {}).get("initContainerStatuses") or [])
        + ((pod.get("status") or {}).get("containerStatuses") or [])
    ]
    waiting = [w for w in waiting if w]
    return ", ".join(sorted(set(waiting))) or "Pending"


def run_pods(args) -> str:
    k = kubectl_from_args(args)
    namespaces = _namespaces(args.namespaces)

    def look() -> Verdict:
        if namespaces:
            pods = [p for ns in namespaces for p in k.items("pods", kind="Pod", namespace=ns)]
        else:
            pods = k.items("pods", kind="Pod", all_namespaces=True)
        if not pods:  # an empty list proves nothing: a wrong namespace or kubeconfig looks just like it
            where = ", ".join(namespaces) if namespaces else "any namespace"
            return Verdict(False, f"no pods in {where}; check --namespaces and the kubeconfig's cluster")
        now = datetime.now(timezone.utc)
        broken, pending = [], []
        for pod in pods:
            reasons = bad_waiting_reasons(pod)
            if reasons:
                broken.append(f"{ns_name(pod)} {', '.join(reasons)}")
            phase = (pod.get("status") or {}).get("phase")
            if phase == "Pending" and not is_terminating(pod):
                created = parse_time(pod["metadata"].get("creationTimestamp"))
                age = (now - created).total_seconds()
                if age > args.pending_grace and not reasons:
                    pending.append(f"{ns_name(pod)} Pending {age:.0f}s ({_pending_reason(pod)})")
        problems = list(broken)
        if len(pending) > args.max_pending:
            problems += pending
        if problems:
            head = []
            if broken:
                head.append(f"{len(broken)} failing")
            if len(pending) > args.max_pending:
                head.append(f"{len(pending)} Pending > {args.pending_grace:g}s (max {args.max_pending})")
            return Verdict(False, f"{', '.join(head)}: {name_list(problems)}")
        where = ", ".join(namespaces) if namespaces else "all namespaces"
        note = f"; tolerated Pending: {name_list(pending)}" if pending else ""
        return Verdict(True, f"{len(pods)} pods in {where}, none failing{note}")

    return poll("pods", look, timeout=args.timeout, interval=args.interval, out=sys.stderr).detail


# --- endpoints -----------------------------------------------------------------------------

def run_endpoints(args) -> str:
    try:
        services = [parse_ns_name(s, "service") for s in args.service]
    except ValueError as exc:
        args._parser.error(str(exc))
    k = kubectl_from_args(args)

    def look() -> Verdict:
        problems, counts = [], []
        for ns, name in services:
            try:
                ep = k.get("endpoints", name, kind="Endpoints", namespace=ns)
            except KubectlError as exc:
                problems.append(f"{ns}/{name}: {exc}")
                continue
            ready = sum(len(s.get("addresses") or []) for s in ep.get("subsets") or [])
            not_ready = sum(len(s.get("notReadyAddresses") or []) for s in ep.get("subsets") or [])
            if ready == 0:
                problems.append(f"{ns}/{name}: no ready addresses ({not_ready} not ready)")
            counts.append(f"{ns}/{name}={ready}")
        if problems:
            return Verdict(False, name_list(problems))
        return Verdict(True, "ready addresses: " + ", ".join(counts))

    return poll("endpoints", look, timeout=args.timeout, interval=args.interval, out=sys.stderr).detail


# --- network -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Path:
    name: str
    source: tuple[str, str] | str  # (ns, pod), or a node name
    target: tuple[str, str] | str  # (ns, pod), or an external host
    port: int | None

    def describe(self) -> str:
        src = "/".join(self.source) if isinstance(self.source, tuple) else f"node {self.source}"
        dst = "/".join(self.target) if isinstance(self.target, tuple) else self.target
        return f"{self.name} ({src} -> {dst}{f':{self.port}' if self.port else ''})"


def _split_spec(text: str, flag: str) -> tuple[str, str, str]:
    name, sep, spec = text.partition("=")
    parts = dict(part.split(":", 1) for part in spec.split(",") if ":" in part)
    if not sep or not name or set(parts) != {"from", "to"} or len(spec.split(",")) != 2:
        raise ValueError(f"{flag} must look like NAME=from:...,to:..., got {text!r}")
    return name, parts["from"], parts["to"]


def parse_path(text: str) -> Path:
    name, src, dst = _split_spec(text, "--path")
    source = parse_ns_name(src)
    if "/" in dst:
        ns, pod, port = parse_pod_target(dst)
        return Path(name, source, (ns, pod), port)
    host, sep, port = dst.rpartition(":")
    if not sep or not host:
        raise ValueError(f"--path {name}: external target must be HOST:PORT, got {dst!r}")
    return Path(name, source, host, parse_port(port))


def parse_node_path(text: str) -> Path:
    name, src, dst = _split_spec(text, "--node-path")
    if not src or "/" in src:
        raise ValueError(f"--node-path {name}: from: takes a node name, got {src!r}")
    ns, pod, port = parse_pod_target(dst)
    return Path(name, src, (ns, pod), port)


def node_probe_pod(k: Kubectl, ns: str, selector: str, node: str) -> str:
    """Name of a Running, Ready hostNetwork pod on `node` matching the selector."""
    pods = k.items("pods", kind="Pod", namespace=ns, selector=selector, field_selector=f"spec.nodeName={node}")
    candidates = [p for p in pods if (p.get("spec") or {}).get("nodeName") == node and not is_terminating(p)]
    if not candidates:
        raise KubectlError(f"no pod matching {selector} in {ns} on node {node}")
    for pod in candidates:
        if not (pod.get("spec") or {}).get("hostNetwork"):
            raise KubectlError(f"probe pod {ns_name(pod)} is not hostNetwork: it cannot stand for node {node}")
        if pod_ready(pod)[0]:
            return name_of(pod)
    raise KubectlError(f"probe pod on node {node} not Ready: {pod_ready(candidates[0])[1]}")


def run_network(args) -> str:
    parser = args._parser
    try:
        paths = [parse_path(p) for p in args.path] + [parse_node_path(p) for p in args.node_path]
        probe_ns = probe_selector = None
        if args.node_path:
            if not args.node_probe_pods:
                raise ValueError("--node-path needs --node-probe-pods NS/SELECTOR (hostNetwork pods to probe from)")
            probe_ns, _, probe_selector = args.node_probe_pods.partition("/")
            if not probe_ns or not probe_selector:
                raise ValueError("--node-probe-pods must be NS/SELECTOR")
        if any(p.port for p in paths):
            check_probe_template(args.probe_cmd, needs_port=True)
        if any(not p.port for p in paths):
            check_probe_template(args.ping_cmd, needs_port=False)
    except ValueError as exc:
        parser.error(str(exc))
    if not paths:
        parser.error("give at least one --path or --node-path")
    if len({p.name for p in paths}) != len(paths):
        parser.error("path names must be unique")
    k = kubectl_from_args(args)

    def probe(path: Path) -> str | None:
        try:
            if isinstance(path.source, tuple):
                src_ns, src_pod = path.source
            else:
                src_ns, src_pod = probe_ns, node_probe_pod(k, probe_ns, probe_selector, path.source)
            address = running_pod_ip(k, *path.target) if isinstance(path.target, tuple) else path.target
        except KubectlError as exc:
            return f"{path.describe()}: {exc}"
        argv = render_probe(args.probe_cmd if path.port else args.ping_cmd, address=address, port=path.port)
        ok, detail = run_probe(k, src_ns, src_pod, argv, timeout=args.probe_timeout)
        return None if ok else f"{path.describe()} via {src_ns}/{src_pod} to {address}: {detail}"

    def look() -> Verdict:
        problems = [msg for msg in (probe(p) for p in paths) if msg]
        if problems:
            return Verdict(False, f"{len(problems)}/{len(paths)} paths failing: {name_list(problems)}")
        return Verdict(True, f"{len(paths)} paths ok: {', '.join(p.name for p in paths)}")

    return poll("network", look, timeout=args.timeout, interval=args.interval, out=sys.stderr).detail
