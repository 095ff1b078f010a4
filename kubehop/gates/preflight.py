"""Read-only checks before a hop touches anything (what users of other tools
learn the hard way, half-way through an upgrade).

  deprecated-apis  the API server has served no request for an API that the
                   target minor no longer serves: its own
                   `apiserver_requested_deprecated_apis` metric, read with
                   `kubectl get --raw /metrics` (Deprecated API Migration Guide)
  pdbs             no PodDisruptionBudget allows zero disruptions: such a
                   budget blocks every drain of its pods' nodes, and the
                   upgrade would hang cordoned half-way (kops#10400,
                   kubespray#8093, cluster-api#13508)
"""
from __future__ import annotations

import argparse
import re
import sys

from kubehop.gates.common import Verdict, add_poll_arguments, poll
from kubehop.gates.kube import KubectlError, add_kubectl_arguments, kubectl_from_args, name_list, ns_name

DEPRECATED_METRIC = "apiserver_requested_deprecated_apis"
# Always exported by a kube-apiserver: proves the text really is its /metrics.
APISERVER_METRIC = "apiserver_request_total"
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def register(subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser("deprecated-apis", help="no request for an API the target minor removes",
                              description=__doc__, formatter_class=fmt)
    p.add_argument("--removed-in", required=True, metavar="X.Y", help="the target Kubernetes minor, e.g. 1.27")
    add_kubectl_arguments(p)
    add_poll_arguments(p, timeout=60, interval=10)
    p.set_defaults(func=run_deprecated_apis, _parser=p)

    p = subparsers.add_parser("pdbs", help="no PodDisruptionBudget blocks every drain",
                              description=__doc__, formatter_class=fmt)
    p.add_argument("--ignore", action="append", default=[], metavar="NS/NAME",
                   help="a budget the operator handles by hand; repeatable")
    add_kubectl_arguments(p)
    add_poll_arguments(p, timeout=300, interval=15)
    p.set_defaults(func=run_pdbs, _parser=p)


def deprecated_requests(metrics: str, minor: str) -> list[str]:
    """`group/version resource` of every deprecated API removed in `minor` that was requested."""
    if APISERVER_METRIC not in metrics:
        raise KubectlError(f"the text has no {APISERVER_METRIC}: not a kube-apiserver /metrics page")
    found = set()
    for line in metrics.splitlines():
        match = _SAMPLE.match(line)
        if not match or match["name"] != DEPRECATED_METRIC:
            continue
        labels = dict(_LABEL.findall(match["labels"] or ""))
        if labels.get("removed_release") != minor or float(match["value"]) <= 0:
            continue
        api = f"{labels.get('group') or 'core'}/{labels.get('version', '?')}"
        resource = labels.get("resource", "?") + (f"/{labels['subresource']}" if labels.get("subresource") else "")
        found.add(f"{api} {resource}")
    return sorted(found)


def run_deprecated_apis(args) -> str:
    if not re.fullmatch(r"\d+\.\d+", args.removed_in):
        args._parser.error(f"--removed-in takes a minor like 1.27, not {args.removed_in!r}")
    k = kubectl_from_args(args)

    def look() -> Verdict:
        found = deprecated_requests(k.raw("/metrics"), args.removed_in)
        if found:
            return Verdict(False, f"clients still request APIs that {args.removed_in} no longer serves: "
                                  f"{name_list(found)}; migrate them (kubectl convert, new manifests) before this hop")
        return Verdict(True, f"no requests for APIs removed in {args.removed_in}")

    return poll("deprecated-apis", look, timeout=args.timeout, interval=args.interval, out=sys.stderr).detail


def blocking_budgets(pdbs: list[dict], ignore: set[str]) -> list[str]:
    """Budgets that allow no disruption while they cover pods: drains would hang."""
    out = []
    for pdb in pdbs:
        status = pdb.get("status") or {}
        if ns_name(pdb) in ignore or not status.get("expectedPods"):
            continue
        if int(status.get("disruptionsAllowed") or 0) == 0:
            out.append(f"{ns_name(pdb)} (healthy {status.get('currentHealthy', 0)}/{status.get('desiredHealthy', '?')}, "
                       f"0 disruptions allowed)")
    return out


def run_pdbs(args) -> str:
    ignore = set(args.ignore)
    k = kubectl_from_args(args)

    def look() -> Verdict:
        pdbs = k.items("poddisruptionbudgets", kind="PodDisruptionBudget", all_namespaces=True)
        blocked = blocking_budgets(pdbs, ignore)
        if blocked:
            return Verdict(False, f"{len(blocked)} PodDisruptionBudget(s) would block every drain: {name_list(blocked)}; "
                                  "scale the workload up, relax the budget, or pass --ignore NS/NAME and handle it by hand")
        return Verdict(True, f"{len(pdbs)} PodDisruptionBudget(s), none blocks a drain")

    return poll("pdbs", look, timeout=args.timeout, interval=args.interval, out=sys.stderr).detail
