"""The version catalog: every version kubehop installs, with where it came from.

This is the only module that holds version literals. Sources are the checked
facts in `shared/reference/version-facts.md` (collected 2026-11); a value marked
`unconfirmed` had no primary source and is pinned conservatively.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import total_ordering

SOURCES = {
    "k8s-patch": "kubernetes/website data/releases/eol.yaml; 1.29/1.32 from kubespray checksums and kops channels/stable",
    "k8s-repo": "kubernetes/website install-kubeadm.md (pkgs.k8s.io, one repo per minor)",
    "containerd": "containerd RELEASES.md (Kubernetes support matrix)",
    "skew": "kubernetes/website version-skew-policy.md",
    "apis": "Kubernetes Deprecated API Migration Guide",
    "cluster-autoscaler": "kubernetes/autoscaler chart index + registry.k8s.io/autoscaling tags",
    "aws-cloud-controller-manager": "kubernetes/cloud-provider-aws chart index + kubernetes/k8s.io images.yaml",
    "kube-state-metrics": "prometheus-community/helm-charts kube-state-metrics compatibility table",
    "ingress-nginx": "kubernetes/ingress-nginx supported versions table; retired 2025-11-11 (kubernetes.io blog)",
    "calico": "Calico system requirements per release (docs.tigera.io)",
    "aws-node-termination-handler": "unconfirmed: aws/eks-charts index (pin checked by hand before use)",
    "cni-plugins": "unconfirmed: containernetworking/plugins releases",
}


@total_ordering
@dataclass(frozen=True)
class Version:
    """A Kubernetes-style version `MAJOR.MINOR.PATCH` (patch may be None for a minor)."""

    major: int
    minor: int
    patch: int | None = None

    @classmethod
    def parse(cls, text: str) -> "Version":
        raw = str(text).strip().lstrip("v")
        parts = raw.split(".")
        if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
            raise ValueError(f"{text!r} is not a version like 1.27 or 1.27.16")
        nums = [int(p) for p in parts]
        return cls(nums[0], nums[1], nums[2] if len(nums) == 3 else None)

    @property
    def minor_str(self) -> str:
        return f"{self.major}.{self.minor}"

    def _key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, -1 if self.patch is None else self.patch)

    def __lt__(self, other: "Version") -> bool:
        return self._key() < other._key()

    def __str__(self) -> str:
        return self.minor_str if self.patch is None else f"{self.minor_str}.{self.patch}"

    def minors_after(self, other: "Version") -> int:
        """How many minors `self` is ahead of `other` (negative when behind)."""
        return (self.major - other.major) * 100 + (self.minor - other.minor)


@dataclass(frozen=True)
class ChartPin:
    """A Helm chart release for one Kubernetes minor: the version we install and
    the range of chart versions known to be compatible (for validating pins)."""

    chart_version: str
    image_tag: str | None
    compatible_charts: tuple[str, str]
    image_minor_must_match: bool = False


@dataclass(frozen=True)
class Addon:
    """A Helm-installed addon: where its chart lives and its pin per minor."""

    name: str
    chart: str
    repo: str
    namespace: str
    release: str
    image_repository: str | None
    per_minor: dict[str, ChartPin]
    warning: str | None = None


@dataclass(frozen=True)
class Release:
    """One Kubernetes minor: the exact patch kubeadm/kubelet/kubectl move to, and
    what a node needs to run it. (The Debian revision suffix of the packages is
    unconfirmed, so the scripts install `X.Y.Z-*`.)"""

    minor: str
    patch: str
    containerd_min: tuple[str, ...]
    removed_apis: tuple[str, ...] = field(default_factory=tuple)

    @property
    def version(self) -> Version:
        return Version.parse(self.patch)

    @property
    def repo_url(self) -> str:
        return f"https://pkgs.k8s.io/core:/stable:/v{self.minor}/deb/"

    @property
    def repo_key_url(self) -> str:
        return f"{self.repo_url}Release.key"


_OLD = ("1.7.0", "1.6.15")
RELEASES: dict[str, Release] = {
    r.minor: r
    for r in (
        Release("1.24", "1.24.17", _OLD),
        Release("1.25", "1.25.16", _OLD, ("batch/v1beta1 CronJob", "policy/v1beta1 PodDisruptionBudget", "policy/v1beta1 PodSecurityPolicy")),
        Release("1.26", "1.26.15", _OLD, ("flowcontrol.apiserver.k8s.io/v1beta1", "autoscaling/v2beta2 HorizontalPodAutoscaler")),
        Release("1.27", "1.27.16", _OLD, ("storage.k8s.io/v1beta1 CSIStorageCapacity",)),
        Release("1.28", "1.28.15", _OLD),
        Release("1.29", "1.29.15", ("1.7.11", "1.6.27"), ("flowcontrol.apiserver.k8s.io/v1beta2",)),
        Release("1.30", "1.30.14", ("2.0.0", "1.7.13", "1.6.28")),
        Release("1.31", "1.31.14", ("2.0.0", "1.7.20", "1.6.34")),
        Release("1.32", "1.32.13", ("2.0.1", "1.7.24", "1.6.36"), ("flowcontrol.apiserver.k8s.io/v1beta3",)),
    )
}

# One containerd for every node image: the newest 1.7 that every catalog minor accepts.
CONTAINERD_VERSION = "1.7.24"
CNI_PLUGINS_VERSION = "1.4.1"


def _ca(chart: str, lo: str, hi: str, tag: str) -> ChartPin:
    return ChartPin(chart, tag, (lo, hi), image_minor_must_match=True)


def _ccm(tag: str) -> ChartPin:
    return ChartPin("0.0.8", tag, ("0.0.8", "0.0.8"), image_minor_must_match=True)


def _ksm(chart: str, lo: str, hi: str) -> ChartPin:
    return ChartPin(chart, None, (lo, hi))


def _nginx(chart: str, tag: str) -> ChartPin:
    series = chart.rsplit(".", 1)[0]
    return ChartPin(chart, tag, (f"{series}.0", chart))


def _calico(tag: str) -> ChartPin:
    return ChartPin(tag.lstrip("v"), tag, (tag.lstrip("v"), tag.lstrip("v")))


ADDONS: dict[str, Addon] = {
    a.name: a
    for a in (
        Addon(
            "calico", "tigera-operator", "https://docs.tigera.io/calico/charts", "tigera-operator",
            "calico", None,
            {
                "1.26": _calico("v3.26.5"), "1.27": _calico("v3.28.5"), "1.28": _calico("v3.28.5"),
                "1.29": _calico("v3.29.7"), "1.30": _calico("v3.29.7"), "1.31": _calico("v3.30.7"),
                "1.32": _calico("v3.30.7"),
            },
        ),
        Addon(
            "aws-cloud-controller-manager", "aws-cloud-controller-manager",
            "https://kubernetes.github.io/cloud-provider-aws", "kube-system",
            "aws-cloud-controller-manager", "registry.k8s.io/provider-aws/cloud-controller-manager",
            {
                "1.26": _ccm("v1.26.14"), "1.27": _ccm("v1.27.10"), "1.28": _ccm("v1.28.11"),
                "1.29": _ccm("v1.29.10"), "1.30": _ccm("v1.30.10"), "1.31": _ccm("v1.31.9"),
                "1.32": _ccm("v1.32.8"),
            },
        ),
        Addon(
            "cluster-autoscaler", "cluster-autoscaler", "https://kubernetes.github.io/autoscaler",
            "kube-system", "cluster-autoscaler", "registry.k8s.io/autoscaling/cluster-autoscaler",
            {
                "1.26": _ca("9.28.0", "9.28.0", "9.28.0", "v1.26.8"),
                "1.27": _ca("9.33.0", "9.29.1", "9.33.0", "v1.27.8"),
                "1.28": _ca("9.34.1", "9.34.0", "9.34.1", "v1.28.7"),
                "1.29": _ca("9.36.0", "9.35.0", "9.36.0", "v1.29.5"),
                "1.30": _ca("9.37.0", "9.37.0", "9.37.0", "v1.30.7"),
                "1.31": _ca("9.44.0", "9.38.0", "9.44.0", "v1.31.5"),
                "1.32": _ca("9.46.6", "9.45.0", "9.46.6", "v1.32.7"),
            },
        ),
        Addon(
            "kube-state-metrics", "kube-state-metrics",
            "https://prometheus-community.github.io/helm-charts", "kube-system", "kube-state-metrics",
            None,
            {
                "1.26": _ksm("5.11.1", "4.30.0", "5.11.1"), "1.27": _ksm("5.16.4", "5.12.0", "5.16.4"),
                "1.28": _ksm("5.18.0", "5.17.0", "5.18.0"), "1.29": _ksm("5.21.0", "5.18.1", "5.21.0"),
                "1.30": _ksm("5.26.0", "5.22.0", "5.26.0"), "1.31": _ksm("5.29.0", "5.27.0", "5.29.0"),
                "1.32": _ksm("6.1.5", "5.30.0", "6.1.5"),
            },
        ),
        Addon(
            "ingress-nginx", "ingress-nginx", "https://kubernetes.github.io/ingress-nginx",
            "ingress-nginx", "ingress-nginx", None,
            {
                "1.26": _nginx("4.11.8", "v1.11.8"), "1.27": _nginx("4.11.8", "v1.11.8"),
                "1.28": _nginx("4.12.8", "v1.12.8"), "1.29": _nginx("4.13.9", "v1.13.9"),
                "1.30": _nginx("4.14.5", "v1.14.5"), "1.31": _nginx("4.15.1", "v1.15.1"),
                "1.32": _nginx("4.15.1", "v1.15.1"),
            },
            warning="ingress-nginx is retired upstream (kubernetes.io, 2025-11-11): no releases or security fixes after March 2026; plan a move to another controller",
        ),
    )
}

# Addon order within a hop: the pod network first, CCM before the autoscaler
# (CA needs initialised nodes), the business-traffic entry point last.
ADDON_ORDER = ("calico", "aws-cloud-controller-manager", "cluster-autoscaler", "kube-state-metrics", "ingress-nginx")

# The drainer kubehop installs beside every node pool (queue mode). Unconfirmed pin.
NTH_CHART = ChartPin("0.21.0", None, ("0.21.0", "0.21.0"))
NTH_REPO = "https://aws.github.io/eks-charts"


class CatalogError(ValueError):
    """A version the catalog does not know."""


def known_minors() -> list[str]:
    return sorted(RELEASES, key=lambda m: Version.parse(m))


def release(minor: str) -> Release:
    try:
        return RELEASES[minor]
    except KeyError:
        raise CatalogError(f"Kubernetes {minor} is not in the catalog (known: {', '.join(known_minors())})") from None


def resolve(text: str) -> Version:
    """Turn `1.27` or `1.27.16` into a catalog patch version.

    A minor resolves to the catalog's last patch; an explicit patch must exist
    (at most the catalog's last patch of that minor).
    """
    wanted = Version.parse(text)
    rel = release(wanted.minor_str)
    if wanted.patch is None:
        return rel.version
    if wanted > rel.version:
        raise CatalogError(f"{wanted} is newer than the last {rel.minor} patch the catalog knows ({rel.patch})")
    return wanted


def max_kubelet_skew(apiserver: Version) -> int:
    """Minors a kubelet may trail the apiserver: 3 from 1.28 on, 2 before (skew policy)."""
    return 3 if (apiserver.major, apiserver.minor) >= (1, 28) else 2


def addon_pin(addon: str, minor: str) -> ChartPin:
    try:
        return ADDONS[addon].per_minor[minor]
    except KeyError:
        raise CatalogError(f"the catalog has no {addon} release for Kubernetes {minor}") from None


CALICO_TESTED = {
    "3.25": ("1.23", "1.28"), "3.26": ("1.24", "1.28"), "3.27": ("1.27", "1.29"),
    "3.28": ("1.27", "1.30"), "3.29": ("1.29", "1.32"), "3.30": ("1.31", "1.35"),
}


def pin_is_compatible(addon: str, minor: str, chart_version: str) -> bool:
    """Whether a chart version pinned in config may run with Kubernetes `minor`."""
    if addon == "calico":
        series = ".".join(chart_version.lstrip("v").split(".")[:2])
        lo, hi = CALICO_TESTED.get(series, ("9.99", "0.0"))
        return Version.parse(lo) <= Version.parse(minor) <= Version.parse(hi)
    return chart_in_range(chart_version, addon_pin(addon, minor).compatible_charts)


def chart_in_range(version: str, bounds: tuple[str, str]) -> bool:
    """Semantic comparison of dotted chart versions against an inclusive range."""

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.lstrip("v").split("."))

    return key(bounds[0]) <= key(version) <= key(bounds[1])
