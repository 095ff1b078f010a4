"""What each kubelet minor no longer accepts on its command line: the one home
of it. The per-master preflight (components/scripts/control_plane/node_preflight.sh)
looks for these in the files the kubeadm drop-in reads, because kubelet exits on
an unknown flag and the node would stay NotReady after kubelet-upgrade.

Sources (kubernetes/kubernetes):
- `--container-runtime`: removed in 1.27 (PR #114017 "kubelet: remove deprecated
  flag --container-runtime"; kubernetes.io blog 2023-03-17 "upcoming changes in
  Kubernetes v1.27"); kubelet 1.27 fails with "unknown flag: --container-runtime"
  (canonical/microk8s#3861). kubeadm up to 1.26 wrote it into kubeadm-flags.env
  (kubernetes/kubeadm#2742).
- `--keep-terminated-pod-volumes`: removed in 1.31 (PR #122082, ACTION REQUIRED
  note; release-1.31 notes).
- `--cloud-provider`: from 1.27 only `external` (or empty) works: the in-tree AWS
  provider was removed (PR #115838); kubelet exits with `unknown cloud provider "aws"`
  (rancher/rke2#6626).
Flags removed before 1.25 (dockershim's, in 1.24) cannot be on a node that runs
a supported kubelet, so they are not listed.
"""
from __future__ import annotations

from kubehop.catalog import Release, Version

REMOVED: dict[str, tuple[str, ...]] = {
    "1.27": ("container-runtime",),
    "1.31": ("keep-terminated-pod-volumes",),
}
CLOUD_PROVIDER_EXTERNAL_SINCE = "1.27"


def removed_by(minor: str) -> tuple[str, ...]:
    """Every listed flag a kubelet of `minor` no longer has (removed at or before it)."""
    target = Version.parse(minor)
    return tuple(flag for since, flags in sorted(REMOVED.items(), key=lambda kv: Version.parse(kv[0]))
                 if Version.parse(since) <= target for flag in flags)


def preflight_env(release: Release) -> dict[str, str]:
    """The node-preflight inputs for a hop to `release`."""
    external = Version.parse(release.minor) >= Version.parse(CLOUD_PROVIDER_EXTERNAL_SINCE)
    return {
        "KUBEHOP_CONTAINERD_MIN": " ".join(release.containerd_min),
        "KUBEHOP_REMOVED_KUBELET_FLAGS": " ".join(removed_by(release.minor)),
        "KUBEHOP_CLOUD_PROVIDER_EXTERNAL": "1" if external else "0",
        "KUBEHOP_PAUSE_IMAGE": release.pause_image,
    }
