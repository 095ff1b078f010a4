"""The version catalog: every version kubehop installs, with where it came from.

Kubernetes versions live here; each addon's chart versions live in its module
under kubehop/addons/ and are re-exported here (ADDONS). Sources are the checked
facts in `shared/reference/version-facts.md` (collected 2026-11); a value marked
`unconfirmed` had no primary source and is pinned conservatively.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import total_ordering

import kubehop.addons as addon_specs

SOURCES = {
    "k8s-patch": "kubernetes/website data/releases/eol.yaml; 1.29/1.32 from kubespray checksums and kops channels/stable",
    "k8s-repo": "kubernetes/website install-kubeadm.md (pkgs.k8s.io, one repo per minor)",
    "containerd": "containerd RELEASES.md (Kubernetes support matrix)",
    "pause": ("kubeadm cmd/kubeadm/app/constants/constants.go PauseVersion per release: 3.7 at v1.24.6 "
              "(kubespray#9337, kubeadm#2698), 3.8 at v1.25.5 (kubespray#9668), 3.9 at v1.26.0-v1.28.4 "
              "(kubekey#2138, kubernetes#122577), 3.10 from 1.31 (kubernetes#125112, CHANGELOG-1.31; "
              "image-builder#1765; release-1.32 build/dependencies.yaml, microk8s#4770); 1.29/1.30 keep 3.9"),
    "skew": "kubernetes/website version-skew-policy.md",
    "apis": "Kubernetes Deprecated API Migration Guide",
    **{name: spec.source for name, spec in addon_specs.SPECS.items()},
    "aws-node-termination-handler": "aws/aws-node-termination-handler Chart.yaml at tag v1.25.6 (OCI chart public.ecr.aws/aws-ec2/helm)",
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


ChartPin = addon_specs.base.ChartPin
ADDONS = addon_specs.SPECS
# Dependency order (each addon's depends_on comes first).
ADDON_ORDER = tuple(ADDONS)


@dataclass(frozen=True)
class Release:
    """One Kubernetes minor: the exact patch kubeadm/kubelet/kubectl move to, and
    what a node needs to run it. (The Debian revision suffix of the packages is
    unconfirmed, so the scripts install `X.Y.Z-*`.)"""

    minor: str
    patch: str
    containerd_min: tuple[str, ...]
    pause: str
    """The pause (sandbox) image tag this minor's kubeadm expects (SOURCES["pause"])."""
    removed_apis: tuple[str, ...] = field(default_factory=tuple)

    @property
    def version(self) -> Version:
        return Version.parse(self.patch)

    @property
    def pause_image(self) -> str:
        """What containerd's `sandbox_image` must say: kubeadm's `images.GetPauseImage`
        (registry.k8s.io, the default imageRepository) with this minor's tag."""
        return f"registry.k8s.io/pause:{self.pause}"

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
        Release("1.24", "1.24.17", _OLD, "3.7"),
        Release("1.25", "1.25.16", _OLD, "3.8", ("batch/v1beta1 CronJob", "policy/v1beta1 PodDisruptionBudget", "policy/v1beta1 PodSecurityPolicy")),
        Release("1.26", "1.26.15", _OLD, "3.9", ("flowcontrol.apiserver.k8s.io/v1beta1", "autoscaling/v2beta2 HorizontalPodAutoscaler")),
        Release("1.27", "1.27.16", _OLD, "3.9", ("storage.k8s.io/v1beta1 CSIStorageCapacity",)),
        Release("1.28", "1.28.15", _OLD, "3.9"),
        Release("1.29", "1.29.15", ("1.7.11", "1.6.27"), "3.9", ("flowcontrol.apiserver.k8s.io/v1beta2",)),
        Release("1.30", "1.30.14", ("2.0.0", "1.7.13", "1.6.28"), "3.9"),
        Release("1.31", "1.31.14", ("2.0.0", "1.7.20", "1.6.34"), "3.10"),
        Release("1.32", "1.32.13", ("2.0.1", "1.7.24", "1.6.36"), "3.10", ("flowcontrol.apiserver.k8s.io/v1beta3",)),
    )
}

# One containerd for every node image: the newest 1.7 that every catalog minor accepts.
CONTAINERD_VERSION = "1.7.24"
CNI_PLUGINS_VERSION = "1.4.1"


# The drainer kubehop installs beside every node pool (queue mode).
# eks-charts dropped the chart in October 2024 (0.21.0 there is frozen at app v1.19.0); it
# is published as an OCI chart by aws/aws-node-termination-handler: chart 0.27.6 = app
# v1.25.6 (Chart.yaml at tag v1.25.6, 2026-04-02; install command in
# config/helm/aws-node-termination-handler/README.md).
NTH_CHART = ChartPin("0.27.6", None, ("0.27.6", "0.27.6"))
NTH_OCI_CHART = "oci://public.ecr.aws/aws-ec2/helm/aws-node-termination-handler"


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


def pin_is_compatible(addon: str, minor: str, chart_version: str) -> bool:
    """Whether a chart version pinned in config may run with Kubernetes `minor`."""
    return ADDONS[addon].compatible(chart_version, minor)


def chart_in_range(version: str, bounds: tuple[str, str]) -> bool:
    """Semantic comparison of dotted chart versions against an inclusive range."""

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.lstrip("v").split("."))

    return key(bounds[0]) <= key(version) <= key(bounds[1])
