"""The kubeadm control-plane upgrade of one hop (runbook sections 1 and 6.3.1).

Every step is its own resource so `pulumi preview` lists it and a failed
`pulumi up` resumes at the step that failed. First, on every master, the
read-only node preflight (containerd, kubelet flags, pause image: a master the
target cannot run on stops the hop before anything moves). Then, beside each
other: the etcd snapshot on the first master and, on every master, the
package repository switch and kubeadm install (no running component moves).
Then the first master's plan, apply, drain, kubelet, uncordon; then each other
master strictly one after another with `kubeadm upgrade node` before its drain.
The step where kubeadm upgrades CoreDNS and kube-proxy (and so the one that
proves them) depends on the kubeadm minor: kubehop/kubeadm_upgrade.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.steps import SshTarget, remote_step
from kubehop import catalog, kubelet_flags, record
from kubehop.kubeadm_upgrade import addons_upgraded_by
from kubehop.config import ControlPlane as ControlPlaneConfig
from kubehop.hops import Hop


@dataclass
class ControlPlaneArgs:
    config: ControlPlaneConfig
    hop: Hop
    targets: dict[str, SshTarget]
    """SSH target per node name, in upgrade order."""
    after: list[pulumi.Resource] = field(default_factory=list)
    """What must finish first (the maintaining cutover): children do not inherit a
    component's depends_on, so the first step waits for these itself."""


class ControlPlane(pulumi.ComponentResource):
    """Upgrades the masters to `hop.control_plane`; `last` is the final step."""

    def __init__(self, name: str, args: ControlPlaneArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubehop:index:ControlPlane", name, None, opts)
        cfg, hop = args.config, args.hop
        version = str(hop.control_plane)
        release = catalog.release(hop.control_plane.minor_str)
        triggers = [version]  # only the target: a re-run after a finished hop changes nothing
        common = {"KUBEHOP_VERSION": version, "KUBEHOP_MINOR": release.minor}
        first = cfg.nodes[0]
        # Read-only, on every master beside each other; everything after waits for all of them.
        checked = [remote_step(f"{node.name}-node-preflight", target=args.targets[node.name],
                               script_path="control_plane/node_preflight.sh", triggers=triggers, parent=self,
                               depends_on=args.after,
                               env={**common, "KUBEHOP_NODE": node.name, **kubelet_flags.preflight_env(release)})
                   for node in cfg.nodes]

        snapshot = remote_step(
            f"{first.name}-etcd-snapshot", target=args.targets[first.name],
            script_path="control_plane/etcd_snapshot.sh", triggers=triggers, parent=self, depends_on=checked,
            env={**common, "KUBEHOP_NODE": first.name,
                 "KUBEHOP_SNAPSHOT_DIR": cfg.etcd.snapshot_dir, "KUBEHOP_SNAPSHOT_KEEP": str(cfg.etcd.keep),
                 "ETCDCTL_ENDPOINTS": cfg.etcd.endpoints,
                 **({"KUBEHOP_SNAPSHOT_S3_URI": cfg.etcd.s3_uri} if cfg.etcd.s3_uri else {}),
                 **({"KUBEHOP_SNAPSHOT_KMS_KEY_ID": cfg.etcd.s3_kms_key_id} if cfg.etcd.s3_kms_key_id else {})})
        # The snapshot this hop's run took (path, revision, keys, S3 copy), from the
        # record line the step prints last: exported as the stack's etcdSnapshot.
        self.snapshot = snapshot.stdout.apply(record.snapshot)

        previous: pulumi.Resource = snapshot
        for index, node in enumerate(cfg.nodes):
            staged = self._stage_packages(node.name, args, common, triggers, checked)
            previous = self._node_steps(node.name, index, args, common, triggers, [previous, staged])
        self.last = previous
        self.version = pulumi.Output.from_input(version)
        self.register_outputs({"version": self.version, "snapshot": self.snapshot})

    def _node_steps(self, node: str, index: int, args: ControlPlaneArgs, common: dict[str, str],
                    triggers: list[str], after: list[pulumi.Resource]) -> pulumi.Resource:
        """The chain of steps that touch this master's running components, strictly
        after the previous master (etcd quorum: one member at a time) and after its
        own staged packages; returns its last step (uncordon). The kubeadm upgrade
        comes before drain and kubelet: a kubelet never runs newer than its node's
        kube-apiserver (version skew policy)."""
        cfg, first = args.config, index == 0
        addons = addons_upgraded_by(args.hop.control_plane.minor, len(cfg.nodes), index)
        env = {**common, "KUBEHOP_NODE": node}
        kubeadm_env = {"KUBEHOP_APPLY_TIMEOUT": str(cfg.apply_timeout_seconds),
                       "KUBEHOP_ADDONS": "1" if addons else "0", "KUBEHOP_KUBE_PROXY": "1" if cfg.kube_proxy else "0"}
        upgrade = ("kubeadm-apply", "control_plane/kubeadm_apply.sh",
                   {"KUBEHOP_FORCE": "1" if cfg.force_apply else "0", **kubeadm_env}) if first else \
            ("kubeadm-node", "control_plane/kubeadm_node.sh", kubeadm_env)
        chain = [
            *([("kubeadm-plan", "control_plane/kubeadm_plan.sh", {})] if first else []),
            upgrade,
            ("drain", "control_plane/drain.sh", {"KUBEHOP_DRAIN_TIMEOUT": str(cfg.drain_timeout_seconds)}),
            ("kubelet-upgrade", "control_plane/kubelet_upgrade.sh", {}),
            ("uncordon", "control_plane/uncordon.sh", {"KUBEHOP_READY_TIMEOUT": str(cfg.ready_timeout_seconds)}),
        ]
        previous = after
        for action, path, extra in chain:
            previous = [remote_step(f"{node}-{action}", target=args.targets[node], script_path=path,
                                    env={**env, **extra}, triggers=triggers, parent=self, depends_on=previous)]
        return previous[0]

    def _stage_packages(self, node: str, args: ControlPlaneArgs, common: dict[str, str],
                        triggers: list[str], after: list[pulumi.Resource]) -> pulumi.Resource:
        """Repository switch and kubeadm install on one master: they touch no running
        component (kubeadm is a CLI; kubelet and kubectl stay held at their version,
        see kubeadm_install.sh), so every master does them at the start of the stage,
        beside the snapshot and the first master's upgrade, each with its own check.
        The kubeadm upgrade guide installs kubeadm on each node right before
        `kubeadm upgrade node` but orders nothing across nodes for it:
        https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/"""
        release = catalog.release(args.hop.control_plane.minor_str)
        env = {**common, "KUBEHOP_NODE": node}
        repo = remote_step(f"{node}-package-repo", target=args.targets[node], script_path="control_plane/package_repo.sh",
                           env={**env, "KUBEHOP_REPO_URL": release.repo_url, "KUBEHOP_REPO_KEY_URL": release.repo_key_url},
                           triggers=triggers, parent=self, depends_on=after)
        return remote_step(f"{node}-kubeadm-install", target=args.targets[node], script_path="control_plane/kubeadm_install.sh",
                           env=env, triggers=triggers, parent=self, depends_on=[repo])
