"""The node side of a hop (runbook sections 3-5): the AMIs, the drainer, the join
parameters and the node pools in waves, after the control plane and the addons.

Moved here from __main__.py (the parts used to be parented to the stack). Each
part keeps its state through an alias to its old place,
`Alias(parent=ROOT_STACK_RESOURCE)`; their children follow without aliases of
their own: the engine gives every child of an aliased parent the URN it had
under the parent's old URN (pulumi/pulumi pkg/resource/deploy/step_generator.go
`generateAliases`, "multiply out any aliases our parent had", and
`inheritedChildAlias`; pulumi tests/integration/aliases adopt_into_component).
So a stack that ran the old layout sees no replace and no delete, and nothing
adopted is touched (tests/components/test_workers_component.py replays that rule).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.drainer import Drainer, DrainerArgs
from components.node_image import NodeImage, NodeImageArgs
from components.node_join import NodeJoin, NodeJoinArgs
from components.node_pool import NodePool, NodePoolArgs, join_token_ttl_hours
from components.steps import SshTarget
from kubehop import config, waves
from kubehop.hops import Deployed, Hop


@dataclass
class WorkersArgs:
    cfg: config.StackConfig
    hop: Hop
    amis: dict[str, pulumi.Input[str]]
    """The AMI each role runs now (the last run's record); built images replace them when the hop rolls them."""
    kubeconfig: pulumi.Input[str]
    provider: k8s.Provider
    aws_provider: pulumi.ProviderResource
    masters: dict[str, SshTarget]
    control_plane_last: pulumi.Resource
    addon_checks: list[pulumi.Resource] = field(default_factory=list)
    adopting: bool = False
    deployed: Deployed | None = None
    """What runs now, per pool: a pool that rolls after serving keeps its own kubelet and AMI meanwhile."""
    deferred: list[str] = field(default_factory=list)
    """Pools that keep what they run in this run (rollout: after-serving while maintaining)."""


class Workers(pulumi.ComponentResource):
    """`rolled_by` pool name -> its rollout gate; `last` the pools that stand for all of them."""

    def __init__(self, name: str, args: WorkersArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubehop:index:Workers", name, None, opts)
        self.args = args
        cfg, hop = args.cfg, args.hop
        moved = [pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]  # where each part lived before this component
        here = pulumi.ResourceOptions(parent=self, aliases=moved)
        in_region = pulumi.ResourceOptions(parent=self, aliases=moved, providers=[args.aws_provider])
        amis = dict(args.amis)
        self.rolled_by: dict[str, pulumi.Resource] = {}
        self.images: dict[str, NodeImage] = {}
        self.join: NodeJoin | None = None
        self.records: dict[str, pulumi.Resource] = {}
        if cfg.node_pools:
            roles = sorted({p.role for p in cfg.node_pools})
            if hop.builds_images:
                self.images = self._images(cfg, hop, roles, here)
                if hop.rolls_to_built_images:
                    amis.update({role: image.ami_id for role, image in self.images.items()})
            drain_seconds = cfg.rollout.worker_drain_timeout_seconds  # one timeout: NTH's drain and the hooks'
            drainer = Drainer("drainer", DrainerArgs(cfg.cluster.name, cfg.cluster.region, args.provider,
                                                     [p.asg_name for p in cfg.node_pools], node_grace_seconds=drain_seconds),
                              opts=in_region)
            first_master = cfg.control_plane.nodes[0].name
            self.join = NodeJoin("node-join", NodeJoinArgs(
                cfg.cluster.name, cfg.cluster.region, first_master, args.masters[first_master],
                join_token_ttl_hours(cfg.node_pools, cfg.control_plane.join_token_ttl_hours),
                triggers=[str(hop.workers), *[amis[role] for role in roles]],
                after=[args.control_plane_last]), opts=here)
            # the join token waits for the control plane's last step; every wave waits for the one before
            self._ready: list[pulumi.Resource] = [*args.addon_checks, *drainer.ready, self.join.step]
            self._amis, self._drain_seconds, self._in_region = amis, drain_seconds, in_region
            self._pools(self.in_window, self._ready, "rollout")
        # the last wave and the last database pool stand for every pool (they waited for the others)
        self.last = [self.rolled_by[name] for name in waves.finishing(self.in_window, cfg.rollout)]
        self.built = {role: image.built_version for role, image in self.images.items()}
        self.register_outputs({"pools": sorted(p.name for p in cfg.node_pools), "images": sorted(self.images)})

    @property
    def in_window(self) -> list[config.NodePool]:
        """The pools that roll inside the maintenance window (all but `rollout: after-serving`)."""
        return [p for p in self.args.cfg.node_pools if p.rollout != "after-serving" or self.args.cfg.traffic is None]

    def after_serving(self, after: list[pulumi.Resource]) -> None:
        """The `rollout: after-serving` pools, registered once users are back (`after`: the canary,
        or the verification when no transition runs): their rollout is outside the window."""
        later = [p for p in self.args.cfg.node_pools if p not in self.in_window]
        if later:
            self._pools(later, [*self._ready, *after], "deferred")
            self.last += [self.rolled_by[name] for name in waves.finishing(later, self.args.cfg.rollout)]

    def _pools(self, pools: list[config.NodePool], ready: list[pulumi.Resource], record: str) -> None:
        """NodePools in waves; database pools one at a time (kubehop/waves.py). A pool in
        `args.deferred` keeps the kubelet and AMI it runs."""
        cfg, hop, amis = self.args.cfg, self.args.hop, self._amis
        waits = waves.waits_for(pools, cfg.rollout)
        for pool in pools:
            # only the nearest steps: a pool's hooks and template wait for `ready`, its group for the
            # previous wave's rollout waits (which waited for `ready`: the SDK sends a registration
            # only once every depends_on URN resolved, pulumi/runtime/resource.py prepare_resource).
            # Each edge costs a walk of its target's whole graph (pulumi/runtime/
            # resource_cycle_breaker.py _reachable), so few edges reach the growing chain of waves.
            after = [self.rolled_by[name] for name in waits[pool.name]]
            ami, kubelet = amis[pool.role], hop.workers
            if record == "deferred" and (pool.name in self.args.deferred or not hop.rolls_to_built_images):
                # kept: while maintaining, and on any run that rolls no image (its own record is what it
                # runs; its role's AMI moves only with the pools that roll in the window); never rolled
                # by kubehop: the AMI its role ran when this run began (the adopted one on a new stack)
                deployed = self.args.deployed or hop.deployed
                kept = deployed.pools.get(pool.name)
                ami = kept["ami"] if kept else self.args.amis.get(pool.role, ami)
                kubelet = deployed.pool_version(pool.name)
            on_adopted_ami = ami == cfg.adopt.amis.get(pool.role)
            node_pool = NodePool(pool.name, NodePoolArgs(
                pool, cfg.cluster.name, cfg.cluster.region, ami, kubelet, self.args.kubeconfig,
                self._drain_seconds, cfg.cluster.imds,
                cfg.adopt.launch_templates[pool.name] if on_adopted_ami else None,
                ready=ready, after=after, adopting=self.args.adopting), opts=self._in_region)
            self.rolled_by[pool.name] = node_pool.rolled
            self.records[f"{record}:{pool.role}:{pool.name}"] = node_pool.rolled

    @staticmethod
    def _images(cfg: config.StackConfig, hop: Hop, roles: list[str], opts: pulumi.ResourceOptions) -> dict[str, NodeImage]:
        """The worker AMI, and the Spark AMI built on it when a pool runs Spark."""
        images = {"worker": NodeImage("worker-image", NodeImageArgs("worker", hop.image, cfg.node_images,
                                                                    cfg.cluster.region, cfg.cluster.name), opts=opts)}
        if "spark" in roles:
            images["spark"] = NodeImage("spark-image", NodeImageArgs("spark", hop.image, cfg.node_images, cfg.cluster.region,
                                                                     cfg.cluster.name, base_ami=images["worker"].ami_id),
                                        opts=opts)
        return images
