"""Hop rules: what one `pulumi up` may do to a cluster, and the journey of hops.

The control plane moves at most one minor per `pulumi up`, never down and
never skipping (kubeadm and the apiserver skew policy). Workers follow the
worker policy without ever running a kubelet newer than the apiserver or
older than the skew policy allows.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from kubehop import catalog
from kubehop.catalog import Version
from kubehop.problems import Problem, Problems

POLICIES = ("each-hop", "efficient")


class HopError(Problems):
    """A requested hop breaks a rule; `key` names the config key to change."""

    def __init__(self, key: str, value: str, message: str, fix: str):
        self.key, self.value, self.message, self.fix = key, value, message, fix
        super().__init__([Problem(key=key, value=value, message=message, fix=fix)])


@dataclass(frozen=True)
class Deployed:
    """What the cluster runs now, from the stack's last outputs or the adopt config."""

    control_plane: Version
    workers: Version
    image: Version | None = None
    amis: dict[str, str] = field(default_factory=dict)
    traffic: str = "serving"
    mirror_maker: str = "running"
    addons: dict[str, str] = field(default_factory=dict)
    """Chart version each addon release runs (recorded, or from adopt.addons)."""
    pools: dict[str, dict] = field(default_factory=dict)
    """Per pool kubehop rolled: {"version", "ami"} its nodes run (a pool rolled after serving can lag)."""

    @classmethod
    def from_output(cls, data: dict) -> "Deployed":
        image = data.get("imageVersion")
        pools = {name: {"version": str(Version.parse(p["version"])), "ami": str(p["ami"])}
                 for name, p in (data.get("pools") or {}).items()}
        return cls(
            Version.parse(data["controlPlaneVersion"]),
            Version.parse(data["workerVersion"]),
            Version.parse(image) if image else None,
            dict(data.get("amis") or {}),
            data.get("traffic") or "serving",
            data.get("mirrorMaker") or "running",
            dict(data.get("addons") or {}),
            pools,
        )

    def pool_version(self, name: str) -> Version:
        """The kubelet a pool's nodes run: its own record, else the workers'."""
        return Version.parse(self.pools[name]["version"]) if name in self.pools else self.workers


@dataclass(frozen=True)
class Hop:
    """The versions one `pulumi up` brings the cluster to."""

    deployed: Deployed
    control_plane: Version
    workers: Version
    image: Version
    target: Version

    @property
    def moves_control_plane(self) -> bool:
        return self.control_plane != self.deployed.control_plane

    @property
    def rolls_workers(self) -> bool:
        return self.workers != self.deployed.workers

    @property
    def name(self) -> str:
        return f"{self.deployed.control_plane}-to-{self.control_plane}"

    @property
    def builds_images(self) -> bool:
        """Images exist for a version the pools will move to (or were built for
        it already): adopting a cluster never rebuilds, or rolls, its AMIs."""
        return self.image != self.deployed.workers or self.deployed.image == self.image

    @property
    def rolls_to_built_images(self) -> bool:
        return self.builds_images and self.workers == self.image


def deferred_pools(cfg, traffic_state: str) -> list[str]:
    """The pools that do not roll in this run because they roll after serving: every
    `rollout: after-serving` pool while the cluster is maintaining (users away)."""
    if cfg.traffic is None or traffic_state != "maintaining":
        return []
    return [p.name for p in cfg.node_pools if p.rollout == "after-serving"]


def check_deferred(cfg, hop: Hop, traffic_state: str) -> None:
    """A pool that waits for serving keeps its kubelet under every apiserver of the window,
    up to the journey's target: refused when the skew policy does not allow it."""
    for i, pool in enumerate(cfg.node_pools):
        if pool.name not in deferred_pools(cfg, traffic_state):
            continue
        kept = hop.deployed.pool_version(pool.name)
        for apiserver in (hop.control_plane, hop.target):
            if not skew_ok(apiserver, kept):
                raise HopError(f"kubehop:nodePools[{i}].rollout", pool.rollout,
                               f"would leave pool {pool.name} at kubelet {kept} under an apiserver at {apiserver}, "
                               f"outside the kubelet skew policy ({catalog.max_kubelet_skew(apiserver)} minors)",
                               "set rollout: in-window for this pool (it rolls in the maintenance window), "
                               "or move fewer minors in one maintenance")


def mirror_maker_after(deployed: Deployed, traffic_state: str, has_kafka: bool) -> str:
    """MirrorMaker is stopped from the maintaining run until the serving run starts it."""
    if traffic_state != "maintaining":
        return "running"
    return "stopped" if has_kafka else deployed.mirror_maker


def skew_ok(apiserver: Version, kubelet: Version) -> bool:
    """kubelet never newer than the apiserver, and at most N minors older."""
    behind = apiserver.minors_after(kubelet)
    return 0 <= behind <= catalog.max_kubelet_skew(apiserver)


def _next_minor(v: Version) -> Version | None:
    try:
        return catalog.release(f"{v.major}.{v.minor + 1}").version
    except catalog.CatalogError:
        return None


def plan_hop(deployed: Deployed, requested: Version, target: Version, policy: str,
             key: str = "kubehop:kubernetesVersion") -> Hop:
    """Check the requested control-plane version against the deployed one and
    decide the worker and image versions for this `pulumi up`."""
    if policy not in POLICIES:
        raise HopError("kubehop:workerPolicy", policy, "is not a worker policy", f"use one of {', '.join(POLICIES)}")
    step = requested.minors_after(deployed.control_plane)
    if requested < deployed.control_plane:
        raise HopError(key, str(requested), f"is older than the deployed control plane {deployed.control_plane}; kubeadm never downgrades",
                       f"set it to {deployed.control_plane} (or newer); to go back, restore the etcd snapshot (README: recovery)")
    if step > 1:
        nxt = _next_minor(deployed.control_plane)
        raise HopError(key, str(requested), f"skips minors: the control plane runs {deployed.control_plane} and moves one minor per `pulumi up`",
                       f"set it to {nxt} first, run `pulumi up`, then continue (kubehop plan --to {requested} shows every hop)")
    if target < requested:
        raise HopError("kubehop:targetVersion", str(target), f"is below kubernetesVersion {requested}",
                       f"set targetVersion to {requested} or later, or remove it")
    workers = _worker_version(deployed, requested, target, policy)
    if not skew_ok(requested, workers):
        raise HopError(key, str(requested), f"would leave workers at {workers}, outside the kubelet skew policy for an apiserver at {requested}",
                       "use workerPolicy each-hop, or roll the workers before this hop")
    image = _image_version(deployed, requested, workers, target, policy)
    return Hop(deployed, requested, workers, image, target)


def _worker_version(deployed: Deployed, cp: Version, target: Version, policy: str) -> Version:
    if policy == "each-hop":
        return max(cp, deployed.workers)
    # efficient: stay while the skew policy allows, move once when the journey ends. Pools roll
    # after the control plane, so the kubelets kept now run under the NEXT hop's apiserver before
    # they roll: they stay only if that skew is supported too (version skew policy: at all times).
    if cp == target and cp > deployed.workers:
        return cp
    nxt = min(_next_minor(cp) or target, target) if cp < target else None
    stays = skew_ok(cp, deployed.workers) and (nxt is None or skew_ok(nxt, deployed.workers))
    return deployed.workers if stays else cp


def _image_version(deployed: Deployed, cp: Version, workers: Version, target: Version, policy: str) -> Version:
    """The worker version the node images are built for: the next rollout's.

    Built ahead (the `prepare` stage) so AMIs exist before the maintenance window.
    """
    if workers != deployed.workers:
        return workers
    if policy == "efficient" and target > workers:
        return target
    if target > cp or target > workers:
        return _next_minor(workers) or workers
    return deployed.image or workers


@dataclass(frozen=True)
class Stage:
    """One `pulumi up` of a journey: its name and the config it sets."""

    name: str
    config: dict[str, str]
    hop: Hop | None = None


def journey(deployed: Deployed, to: Version, policy: str, *, production: bool,
            prepare_images: bool) -> list[Stage]:
    """The stages a user runs to bring the cluster to `to`, one `pulumi up` each:
    prepare (images) and maintaining (production) first, a stage per minor, then
    serving (production)."""
    if to < deployed.control_plane:
        raise HopError("--to", str(to), f"is older than the deployed control plane {deployed.control_plane}", "choose a newer version")
    stages: list[Stage] = []
    state = deployed
    if prepare_images:
        prep = plan_hop(state, state.control_plane, to, policy)
        if prep.image != (state.image or state.workers):
            stages.append(Stage("prepare", {"kubehop:targetVersion": str(to)}, prep))
            state = replace(state, image=prep.image)
    if production and to != deployed.control_plane and deployed.traffic != "maintaining":  # a recorded maintaining stays
        stages.append(Stage("maintaining", {"kubehop:traffic.state": "maintaining", "kubehop:targetVersion": str(to)}))
        state = replace(state, traffic="maintaining")
    current = state.control_plane
    while current.minor_str != to.minor_str or current < to:
        nxt = to if current.minor_str == to.minor_str else (_next_minor(current) or to)
        if nxt.minor_str == to.minor_str:
            nxt = to
        hop = plan_hop(state, nxt, to, policy)
        stages.append(Stage(str(nxt), {"kubehop:kubernetesVersion": str(nxt), "kubehop:targetVersion": str(to)}, hop))
        state = replace(state, control_plane=hop.control_plane, workers=hop.workers, image=hop.image)
        current = nxt
    if production and to != deployed.control_plane:
        stages.append(Stage("serving", {"kubehop:traffic.state": "serving", "kubehop:targetVersion": str(to)}))
    return stages
