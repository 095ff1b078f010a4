"""The plan grows with the cluster, not with pools x cluster: the SDK's cycle
check walks every dependency target's whole graph (pulumi/runtime/
resource_cycle_breaker.py `_reachable`, called per edge from pulumi/runtime/
rpc.py `_add_dependency`). Pools in waves form a chain, so an edge to the
previous wave walks every wave before it; each pool keeps such edges to the
few that order it (launch hook -> previous wave, group -> launch hook,
rollout wait -> group). Its drain hook and launch template wait only for the
stage's prerequisites.

The graph is read once the plan is built, so the counts do not depend on the
order in which the asynchronous registrations happened to run."""
from __future__ import annotations

import re

import pytest
from pulumi.runtime import resource_cycle_breaker, rpc

from kubehop import waves
from kubehop import config
from kubehop.plan import bench
from kubehop.plan.stages import read_stack_file

POOL_OF = re.compile(r"^(pool\d\d)-")


def recorded_edges(masters: int, pools: int, monkeypatch) -> tuple[list[tuple[object, object]], int]:
    """Every (from, to) dependency the SDK declared over one whole plan of a generated
    cluster, and the plan's number of stages."""
    edges: list[tuple[object, object]] = []
    declare = resource_cycle_breaker.declare_dependency

    def recording(from_resource, to_resource):
        edges.append((from_resource, to_resource))
        return declare(from_resource, to_resource)

    with monkeypatch.context() as patch:
        patch.setattr(rpc, "declare_dependency", recording)
        _, plan = bench.timed_plan(bench.generated(masters, pools))
    return edges, len(plan["stages"])


def pool_of(resource) -> str | None:
    match = POOL_OF.match(getattr(resource, "_name", ""))
    return match.group(1) if match else None


def closure(resource) -> set:
    return set(resource_cycle_breaker._with_transitive_deps(resource, set()))


def reaches_another_pool(resource, own: str) -> bool:
    return any(pool_of(r) not in (None, own) for r in closure(resource))


@pytest.fixture(scope="module")
def recorded():
    with pytest.MonkeyPatch.context() as patch:
        yield recorded_edges(3, 12, patch)


@pytest.fixture(scope="module")
def waits() -> dict[str, list[str]]:
    stack = read_stack_file(bench.generated(3, 12))
    cfg = config.load(stack.raw, set(stack.secret_keys))
    return waves.waits_for(cfg.node_pools, cfg.rollout)


def test_drain_hooks_and_templates_wait_for_no_other_pool(recorded):
    """They wait for the stage's prerequisites only: a template launches nothing until its group
    names it, and the group waits for the previous wave."""
    edges, stages = recorded
    checked = 0
    for source, _ in edges:
        own = pool_of(source)
        if own and source._name.endswith(("-drain-hook", "-launch-template")):
            assert not reaches_another_pool(source, own), source._name
            checked += 1
    assert checked >= 2 * 12 * stages


def test_each_pool_has_only_the_edges_that_order_it_into_the_chain(recorded, waits):
    """Per pool and stage: one edge per pool of the previous wave, then one each from the group
    and the rollout wait (the wait also names the template's version, whose graph is small)."""
    edges, stages = recorded
    long_walks: dict[str, int] = {}
    for source, target in edges:
        own = pool_of(source)
        if own and reaches_another_pool(target, own):
            long_walks[own] = long_walks.get(own, 0) + 1
    assert long_walks, "no pool waits for another: the generated cluster has waves"
    for name, count in long_walks.items():
        assert count <= stages * (len(waits[name]) + 2), (name, count, waits[name])
    for name, previous in waits.items():
        if not previous:
            assert name not in long_walks, name
