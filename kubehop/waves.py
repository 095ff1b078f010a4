"""Which node pools roll side by side.

Pools that are not `database` roll in waves: up to `rollout.maxParallelPools`
at once, and only as many as fit the capacity budget
`rollout.maxUnavailableNodes`; a wave starts when the previous one is done.
Database pools roll strictly one at a time, each after the previous database
pool, beside the waves: their refresh keeps 100% healthy (launch before
terminate), so they take no capacity from the budget.

A pool's cost is the batch its instance refresh takes out of service at once:
maxSize x (100 - minHealthyPercentage) %, at least one node. AWS replaces
instances in batches bounded by the minimum healthy percentage:
https://docs.aws.amazon.com/autoscaling/ec2/userguide/understand-instance-refresh-default-values.html
"""
from __future__ import annotations

import math

from kubehop.config import NodePool, Rollout


def unavailable(pool: NodePool) -> int:
    """Nodes one batch of the pool's instance refresh takes down."""
    return max(1, math.ceil(pool.max_size * (100 - pool.min_healthy_percentage) / 100))


def plan_waves(pools: list[NodePool], rollout: Rollout) -> list[list[str]]:
    """The waves of non-database pools, in config order."""
    waves: list[list[str]] = []
    cost = 0
    for pool in (p for p in pools if not p.database):
        need = unavailable(pool)
        if waves and len(waves[-1]) < rollout.max_parallel_pools and cost + need <= rollout.max_unavailable_nodes:
            waves[-1].append(pool.name)
            cost += need
        else:
            waves.append([pool.name])
            cost = need
    return waves


def waits_for(pools: list[NodePool], rollout: Rollout) -> dict[str, list[str]]:
    """Per pool, the pools whose rollout must finish before it starts."""
    out: dict[str, list[str]] = {}
    previous: list[str] = []
    for wave in plan_waves(pools, rollout):
        for name in wave:
            out[name] = list(previous)
        previous = wave
    last_database: list[str] = []
    for pool in (p for p in pools if p.database):
        out[pool.name] = list(last_database)
        last_database = [pool.name]
    return out


def finishing(pools: list[NodePool], rollout: Rollout) -> list[str]:
    """The pools no other pool waits for (the last wave, the last database
    pool): once they are done, every pool is."""
    waited = {name for names in waits_for(pools, rollout).values() for name in names}
    return [p.name for p in pools if p.name not in waited]
