"""How long each step is expected to take, in minutes.

The defaults are the comparison model of issue 14 (a hand-run runbook's
timings). A stack overrides them per action (`kubehop:estimates`) and per pool
(`nodePools[].estimates`), e.g. with the timings of a previous run.
"""
from __future__ import annotations

from dataclasses import dataclass, field

DEFAULTS: dict[str, float] = {
    "node-preflight": 1, "etcd-snapshot": 2, "package-repo": 1, "kubeadm-install": 1, "kubeadm-plan": 1, "kubeadm-apply": 8,
    "kubeadm-node": 4, "drain": 5, "kubelet-upgrade": 2, "uncordon": 1, "addon": 3, "addon-check": 2,
    "image-build": 25, "launch-template": 0.5, "node-pool": 0.5, "rollout-wait": 45,
    "traffic-maintain": 1, "mysql-replication-check": 1, "mysql-switch": 2, "mysql-switch-back": 2, "mirrormaker-stop": 1,
    "kafka-lag-gate": 15, "verify": 3, "mirrormaker-start": 1, "mirror-lag-gate": 15, "traffic-serve": 1,
    "canary": 10,
}
OTHER = 1.0
"""Any step the table does not name (preflight, join token, drain hook, ...)."""
ROLLOUT_BY_KIND = {"database": 90.0, "spark": 30.0}
"""rollout-wait of a database pool (one node at a time, each new node Ready first) and of a Spark pool."""
DELETED = 0.0
"""Removing a finished step from the state runs nothing on the cluster."""


@dataclass(frozen=True)
class Model:
    """Defaults, then the stack's per-action overrides, then its per-pool ones."""

    actions: dict[str, float] = field(default_factory=dict)
    pools: dict[str, dict[str, float]] = field(default_factory=dict)
    pool_kinds: dict[str, str] = field(default_factory=dict)
    """pool name -> "database", "spark" or "worker"."""

    def minutes(self, action: str, target: str, op: str) -> float:
        if op == "delete":
            return DELETED
        pool = self.pools.get(target, {})
        if action in pool:
            return float(pool[action])
        if action in self.actions:
            return float(self.actions[action])
        if action == "rollout-wait" and self.pool_kinds.get(target) in ROLLOUT_BY_KIND:
            return ROLLOUT_BY_KIND[self.pool_kinds[target]]
        return float(DEFAULTS.get(action, OTHER))


def from_config(cfg) -> Model:
    """The model for one stack (a `kubehop.config.StackConfig`)."""
    kinds = {p.name: "database" if p.database else p.role for p in cfg.node_pools}
    return Model(actions=dict(cfg.estimates), pools={p.name: dict(p.estimates) for p in cfg.node_pools if p.estimates},
                 pool_kinds=kinds)
