"""How `kubeadm upgrade` behaves per minor (1.24-1.32): the one home of it.

The control-plane component (components/control_plane.py) reads it to decide
which step proves the CoreDNS/kube-proxy upgrade, and the stand-in kubeadm of
the tests (tests/standins/kubeadm_standin.py) reads the same facts to behave
like the kubeadm of each minor. Plain data, no Pulumi, stdlib only (the
stand-in imports it with `python -S`).

Sources (kubernetes/kubernetes unless named):
- Addon deferral, kubeadm >= 1.28: `upgrade apply` and `upgrade node` upgrade
  CoreDNS and kube-proxy only when no other control-plane instance still runs
  a different kube-apiserver image (`UnupgradedControlPlaneInstances` lists the
  kube-system pods labelled component=kube-apiserver and compares each
  container image with this node's), else they print the skip line and exit 0.
  PR #116570 (the check) and #117660 (feature gate), CHANGELOG-1.28 ("Upgrade of
  the CoreDNS and kube-proxy addons will now trigger after all the control
  plane instances have been upgraded"); code in
  cmd/kubeadm/app/phases/upgrade/postupgrade.go (1.28, 1.29: PerformAddonsUpgrade)
  and cmd/kubeadm/app/cmd/phases/upgrade/{apply,node}/addons.go
  (`shouldUpgradeAddons`, 1.30+ where apply and node run as phases).
- UpgradeAddonsBeforeControlPlane: deprecated gate, default false, in 1.28-1.30;
  removed in 1.31 (kubernetes/website kubeadm feature-gates table:
  "UpgradeAddonsBeforeControlPlane | 1.28 | - | - | 1.31"). kubehop never sets it.
- Before 1.28, `upgrade apply` upgrades the addons at its end whatever the
  other masters run; `upgrade node` never touches them.
- Static pods are written one component at a time: etcd, kube-apiserver,
  kube-controller-manager, kube-scheduler (cmd/kubeadm/app/phases/upgrade/
  staticpods.go `StaticPodControlPlane`); a component whose new manifest equals
  the current one is skipped ("Current and new manifests of ... are equal").
  Then the ClusterConfiguration is uploaded to the kubeadm-config ConfigMap
  (apply only) and the kubelet config is written to /var/lib/kubelet/config.yaml
  (`WriteKubeletConfigFiles`, backup under /etc/kubernetes/tmp).
- Version policy (cmd/kubeadm/app/phases/upgrade/policy.go
  `EnforceVersionPolicies`): one minor at a time ("Specified version to upgrade
  to %q is too high; kubeadm can upgrade only 1 minor version at a time", not
  skippable for released versions); never a minor above kubeadm's own
  ("... is at least one minor release higher than the kubeadm minor release").
- CoreDNS image kubeadm deploys per minor (constants.CoreDNSVersion): 1.24
  v1.8.6 from coredns/deployment kubernetes/CoreDNS-k8s_version.md; the later
  ones are unconfirmed (recalled from the release notes) and only feed the
  stand-in: the scripts ask the node's kubeadm (`kubeadm config images list`).
"""
from __future__ import annotations

from dataclasses import dataclass

FIRST_MINOR, LAST_MINOR = 24, 32
ADDONS_WAIT_FOR_ALL_MASTERS_SINCE = 28
GATE_MINORS = (28, 29, 30)  # UpgradeAddonsBeforeControlPlane exists (deprecated), removed in 1.31
MANIFEST_ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
# The manifests that run the Kubernetes version (etcd runs its own).
VERSIONED_MANIFESTS = MANIFEST_ORDER[1:]
COREDNS = {24: "v1.8.6", 25: "v1.9.3", 26: "v1.9.3", 27: "v1.10.1", 28: "v1.10.1", 29: "v1.11.1",
           30: "v1.11.1", 31: "v1.11.3", 32: "v1.11.3"}
APPLY_SKIP_LINE = "[upgrade/addons] skip upgrade addons because control plane instances {nodes} have not been upgraded"
NODE_SKIP_LINE = "[upgrade/addon] Skipping upgrade of addons because control plane instances {nodes} have not been upgraded"


@dataclass(frozen=True)
class KubeadmMinor:
    """What one kubeadm minor does during an upgrade."""

    minor: int
    addons_wait_for_all_masters: bool
    """True from 1.28: apply skips CoreDNS/kube-proxy while another master runs the old
    kube-apiserver; the last master's `upgrade node` upgrades them."""
    has_addon_order_gate: bool
    coredns: str

    @property
    def name(self) -> str:
        return f"1.{self.minor}"


def kubeadm_minor(minor: int | str) -> KubeadmMinor:
    """The behaviour of kubeadm 1.<minor> (accepts 28, "28" or "1.28")."""
    number = int(str(minor).split(".")[-1])
    if not FIRST_MINOR <= number <= LAST_MINOR:
        raise ValueError(f"kubeadm 1.{number} is outside the modelled 1.{FIRST_MINOR}-1.{LAST_MINOR}")
    return KubeadmMinor(number, number >= ADDONS_WAIT_FOR_ALL_MASTERS_SINCE, number in GATE_MINORS, COREDNS[number])


def addons_upgraded_by(minor: int | str, masters: int, index: int) -> bool:
    """Whether the upgrade step of master `index` (0 = the one running `apply`) of a
    `masters`-node control plane is the one where kubeadm upgrades CoreDNS and kube-proxy."""
    if not kubeadm_minor(minor).addons_wait_for_all_masters or masters == 1:
        return index == 0
    return index == masters - 1
