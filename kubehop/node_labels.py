"""Kubernetes syntax for the node labels and taints a pool's kubelet registers.

A value kubelet refuses makes every new node of the pool fail to join, and a
value that reaches the boot script unchecked could be shell code: both are
refused at config load. The rules are apimachinery's
(k8s.io/apimachinery/pkg/util/validation/validation.go: IsQualifiedName,
IsDNS1123Subdomain, IsValidLabelValue), the taint rules of
pkg/apis/core/validation/validation.go (validateNodeTaints: key a qualified
name, value a label value) and kubelet's own-label rule
(k8s.io/kubelet/pkg/apis/well_known_labels.go IsKubeletLabel, enforced for
--node-labels by cmd/kubelet/app/options/options.go ValidateKubeletFlags since
1.16: a key in the kubernetes.io or k8s.io namespace must be a kubelet label
or in [*.]kubelet.kubernetes.io / [*.]node.kubernetes.io).
"""
from __future__ import annotations

POOL_LABEL = "kubehop.io/pool"
"""The label kubehop's boot script gives every node of a pool: the pool's name (components/node_pool.py)."""

import re

_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
NAME_RE = re.compile(f"^{_NAME}$")
VALUE_RE = re.compile(f"^({_NAME})?$")
# apimachinery IsDNS1123Label (at most 63 characters, in the pattern) and IsDNS1123Subdomain
# (at most SUBDOMAIN_MAX characters, checked beside the pattern): namespaces, object and node names.
LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SUBDOMAIN_MAX = 253

# well_known_labels.go kubeletLabels (the keys themselves, from k8s.io/api core/v1)
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type",
    "kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os", "beta.kubernetes.io/arch",
})
KUBELET_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
RESERVED = ("kubernetes.io", "k8s.io")
EXAMPLE_KEY = "dv.io/node-type"


def key_problem(key: str) -> str | None:
    """Why `key` is not a qualified name (prefix/name), or None."""
    prefix, _, name = key.rpartition("/") if "/" in key else ("", "", key)
    if key.count("/") > 1:
        return "has more than one '/'"
    if "/" in key and not prefix:
        return "has an empty prefix before '/'"
    if prefix and (len(prefix) > SUBDOMAIN_MAX or not SUBDOMAIN_RE.match(prefix)):
        return f"prefix {prefix!r} is not a lowercase DNS subdomain (at most 253 characters)"
    if not name or len(name) > 63 or not NAME_RE.match(name):
        return "name part must be 1-63 characters: letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    return None


def value_problem(value: str) -> str | None:
    """Why `value` is not a label value, or None (empty is allowed)."""
    if len(value) > 63 or not VALUE_RE.match(value):
        return "must be empty or 1-63 characters: letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    return None


def kubelet_refuses(key: str) -> bool:
    """True for a kubernetes.io/k8s.io key kubelet may not set on its own node."""
    if key in KUBELET_LABELS:
        return False
    namespace = key.split("/", 1)[0] if "/" in key else ""
    if any(namespace == ns or namespace.endswith("." + ns) for ns in KUBELET_NAMESPACES):
        return False
    return any(namespace == r or namespace.endswith("." + r) for r in RESERVED)


def label_problems(labels: dict[str, str]) -> list[tuple[str, str, str, str]]:
    """(key, shown value, message, fix) for every label kubelet would refuse."""
    out = []
    for key, value in labels.items():
        why = key_problem(key)
        if why:
            out.append((key, key, f"label key {why}", f"use a key like {EXAMPLE_KEY}"))
        elif kubelet_refuses(key):
            out.append((key, key, "is in the kubernetes.io/k8s.io namespace, which kubelet's --node-labels refuses "
                        "(except node.kubernetes.io/ and kubelet.kubernetes.io/ keys)",
                        "use your own prefix (e.g. dv.io/role) or node.kubernetes.io/<name>; node-role.kubernetes.io/* "
                        "can only be set after the join by an admin"))
        why = value_problem(value)
        if why:
            out.append((key, value, f"label value {why}", "use e.g. \"database\" (no spaces, quotes, '$' or other symbols)"))
    return out
