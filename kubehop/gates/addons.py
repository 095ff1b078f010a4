"""`addon-check`: is an addon rolled out, Ready, and doing its job? (runbook 2, 6.3.2, 6.4.2)

Common to every addon: each --workload (Deployment/DaemonSet/StatefulSet in
--namespace) has observed its latest generation and has every replica updated,
ready and available; the pods it selects are Running and Ready; with
--image-tag, the pod template's images carry that tag (v1.27 matches any
v1.27.x, so CA/CCM can be pinned to the Kubernetes minor).

With --release NS/NAME and --chart-version, the release's deployed revision runs that
chart version (its Helm storage Secret): what the recorded state says the addon runs
comes from this check having passed (kubehop/record.py).

Then each addon's own check (its module in kubehop/addons/, `gate`):
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
  generic, or an addon module    the common checks only
  with no gate
"""
from __future__ import annotations

import argparse
import base64
import gzip
import json
import sys

from kubehop.addons import SPECS
from kubehop.gates.common import Verdict, add_poll_arguments, poll
from kubehop.gates.kube import (
    Kubectl,
    KubectlError,
    add_kubectl_arguments,
    image_tag,
    is_terminating,
    kubectl_from_args,
    name_list,
    name_of,
    ns_name,
    parse_ns_name,
    parse_workload,
    pod_ready,
    selector_matches,
    selector_string,
    template_images,
    version_matches,
    workload_rolled_out,
)

# Every addon module's name (kubehop/addons/), and `generic`: an addon with no check of its
# own (no `gate` in its module) gets the common checks (workloads, image tag, deployed chart) only.
ADDONS = (*SPECS, "generic")

# Flags that only mean something for some addons (each addon module's gate.flags):
# dest -> (the addons it applies to, its default).
FLAGS = [(spec.name, flag) for spec in SPECS.values() if spec.gate for flag in spec.gate.flags]
EXTRAS = {flag.dest: (tuple(n for n, f in FLAGS if f.dest == flag.dest), flag.default) for _, flag in FLAGS}


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
    for spec in SPECS.values():
        if spec.gate and spec.gate.flags:
            group = p.add_argument_group(spec.name)
            for flag in spec.gate.flags:
                group.add_argument(flag.flag, **flag.options)
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
    gate = SPECS[args.addon].gate if args.addon in SPECS else None
    if gate:
        try:
            gate.settle(args)
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

# --- cluster-autoscaler --------------------------------------------------------------------

# --- kube-state-metrics --------------------------------------------------------------------

# --- ingress-nginx -------------------------------------------------------------------------

# --- calico --------------------------------------------------------------------------------

def check_nothing(k: Kubectl, args, pods: list[dict]) -> list[str]:
    return []


ADDON_CHECKS = {name: spec.gate.check for name, spec in SPECS.items() if spec.gate}
SUMMARY = {name: spec.gate.summary for name, spec in SPECS.items() if spec.gate}
