"""Read-only checks before a hop touches anything (what users of other tools
learn the hard way, half-way through an upgrade).

  deprecated-apis  no kube-apiserver has served a request for an API that the
                   target minor no longer serves: each one's own
                   `apiserver_requested_deprecated_apis` metric (Deprecated API
                   Migration Guide). The metric lives in each apiserver process,
                   so every one is read, not the one the load balancer picks:
                   the kube-system pods labelled component=kube-apiserver,
                   tier=control-plane carry their endpoint in the annotation
                   kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint
                   (kubeadm writes it into the static pod, constants.go
                   KubeAPIServerAdvertiseAddressEndpointAnnotationKey, and finds
                   the apiservers the same way, util/config/cluster.go), and
                   kubectl reads `/metrics` there with `--server` (same CA and
                   credentials: kubeadm's apiserver certificate holds the
                   advertise address, pkiutil GetAPIServerAltNames).
  pdbs             no PodDisruptionBudget allows zero disruptions: such a
                   budget blocks every drain of its pods' nodes, and the
                   upgrade would hang cordoned half-way (kops#10400,
                   kubespray#8093, cluster-api#13508)
"""
from __future__ import annotations

import argparse
import functools
import re
import sys

from kubehop.gates.common import Verdict, add_poll_arguments, poll
from urllib.parse import urlsplit

from kubehop.gates.kube import KubectlError, add_kubectl_arguments, kubectl_from_args, name_list, ns_name

DEPRECATED_METRIC = "apiserver_requested_deprecated_apis"
# Always exported by a kube-apiserver: proves the text really is its /metrics.
APISERVER_METRIC = "apiserver_request_total"
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
ENDPOINT_ANNOTATION = "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"
APISERVER_SELECTOR = "component=kube-apiserver,tier=control-plane"
_ENDPOINT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")


def register(subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser("deprecated-apis", help="no request for an API the target minor removes",
                              description=__doc__, formatter_class=fmt)
    p.add_argument("--removed-in", required=True, metavar="X.Y", help="the target Kubernetes minor, e.g. 1.27")
    p.add_argument("--apiservers", type=int, default=1, metavar="N",
                   help="how many kube-apiservers there must be (the control-plane nodes); default 1")
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


def apiserver_endpoints(pods: list[dict]) -> tuple[list[str], list[str]]:
    """(endpoint of each kube-apiserver pod, pods without a usable one): `host:port`
    from kubeadm's annotation, checked before it reaches kubectl's argv."""
    found, lacking = [], []
    for pod in pods:
        meta = pod.get("metadata") or {}
        endpoint = (meta.get("annotations") or {}).get(ENDPOINT_ANNOTATION, "")
        if _ENDPOINT.fullmatch(endpoint):
            found.append(endpoint)
        else:
            lacking.append(meta.get("name", "?"))
    return sorted(set(found)), sorted(lacking)


def run_deprecated_apis(args) -> str:
    if not re.fullmatch(r"\d+\.\d+", args.removed_in):
        args._parser.error(f"--removed-in takes a minor like 1.27, not {args.removed_in!r}")
    if args.apiservers < 1:
        args._parser.error(f"--apiservers takes the number of control-plane nodes (at least 1), not {args.apiservers}")
    k = kubectl_from_args(args)
    # the kubeconfig's scheme, read once it can be (a failure is a failed look, retried)
    kubeconfig_scheme = functools.cache(lambda: urlsplit(k.kubeconfig_server()).scheme or "https")

    def look() -> Verdict:
        scheme = kubeconfig_scheme()
        pods = k.items("pods", kind="Pod", namespace="kube-system", selector=APISERVER_SELECTOR)
        endpoints, lacking = apiserver_endpoints(pods)
        if len(endpoints) < args.apiservers:
            return Verdict(False, f"found {len(endpoints)} kube-apiserver endpoint(s) ({name_list(endpoints) or 'none'}), "
                                  f"expected {args.apiservers}" + (f"; pods without {ENDPOINT_ANNOTATION}: {name_list(lacking)}"
                                                                   if lacking else "")
                                  + "; every apiserver must be read (each counts its own requests): check "
                                    "`kubectl -n kube-system get pods -l component=kube-apiserver`")
        found = []
        for endpoint in endpoints:
            try:
                metrics = k.at(f"{scheme}://{endpoint}").raw("/metrics")
            except KubectlError as exc:
                return Verdict(False, f"cannot read /metrics of the kube-apiserver at {endpoint}: {exc}; the machine "
                                      f"running pulumi must reach every master's advertise address and port")
            found += [f"{api} (at {endpoint})" for api in deprecated_requests(metrics, args.removed_in)]
        if found:
            return Verdict(False, f"clients still request APIs that {args.removed_in} no longer serves: "
                                  f"{name_list(found)}; migrate them (kubectl convert, new manifests) before this hop")
        return Verdict(True, f"no requests for APIs removed in {args.removed_in} on any of {len(endpoints)} kube-apiservers")

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
