"""The plan grows with the cluster, not faster: each pool declares only its
nearest dependencies, so the SDK's cycle check (it walks every dependency
target's whole graph: pulumi/runtime/resource_cycle_breaker.py `_reachable`,
called per edge from pulumi/runtime/rpc.py `_add_dependency`) does not repeat a
walk of everything before it for every pool."""
from __future__ import annotations

from pulumi.runtime import resource_cycle_breaker, rpc

from kubehop.plan import bench


def walked(masters: int, pools: int, monkeypatch) -> int:
    """Resources the cycle check visits over one whole plan of a generated cluster."""
    visits = [0]
    declare = resource_cycle_breaker.declare_dependency

    def counting(from_resource, to_resource):
        visits[0] += sum(1 for _ in resource_cycle_breaker._with_transitive_deps(to_resource, set()))
        return declare(from_resource, to_resource)

    with monkeypatch.context() as patch:
        patch.setattr(rpc, "declare_dependency", counting)
        bench.timed_plan(bench.generated(masters, pools))
    return visits[0]


def test_dependency_walks_grow_linearly_with_pools(monkeypatch):
    ten, forty = walked(3, 10, monkeypatch), walked(3, 40, monkeypatch)
    # four times the pools: linear wiring stays under 4x the walks (the masters and addons are shared);
    # each pool waiting for `ready` and every earlier wave again made it about 7x
    assert forty < 4 * ten, (ten, forty)
