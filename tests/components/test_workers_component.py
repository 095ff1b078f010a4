"""The node side moved into components/workers.py keeps every resource's state.

tests/fixtures/urns/before-workers-component.json holds the URNs the program
registered before the move, in the engine's form (recorded from commit
9dca9e1 with the same two runs as below). The engine maps a new URN to an old one by its aliases
(pulumi/pulumi pkg/resource/deploy/step_generator.go `generateAliases`): a
resource's own alias specs (`noParent`: the old URN has no parent type in its
qualified type), then, for a child of an aliased parent, `inheritedChildAlias`:
the parent's old qualified type, the child's type and name. `previous_urn`
replays that rule; every old URN of the node side must be reached (nothing
deleted or created again: adopted ASGs and launch templates stay), and only
the node side moves."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubehop.plan import engine
from tests.plan_helpers import prod_b
from tests.components.test_program import _maintaining, run

BEFORE = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "urns" / "before-workers-component.json").read_text())
NEW_ON_PURPOSE = {"kubehop:index:Workers"}
MOVED = {"kubehop:index:NodeImage", "kubehop:index:Drainer", "kubehop:index:NodeJoin", "kubehop:index:NodePool"}
"""The parts that were parented to the stack and now live in Workers."""


def split(urn: str) -> tuple[str, str, str]:
    """(stack::project prefix, qualified type, name) of a URN."""
    head, qualified, name = urn.rsplit("::", 2)
    return head, qualified, name


def engine_urn(res: engine.Registered, by_urn: dict[str, engine.Registered], memo: dict[str, str]) -> str:
    """The URN the engine gives a resource: its parent's qualified type, `$`, its type (the stack
    itself left out; resource.NewURN). The mock monitor's own URNs carry only the immediate
    parent's type (pulumi/runtime/mocks.py make_urn), so they are rebuilt from the tree."""
    if res.urn not in memo:
        head, _, name = split(res.urn)
        parent = by_urn.get(res.parent)  # the stack is not recorded: a top-level resource has none
        qualified = res.type if parent is None else f"{split(engine_urn(parent, by_urn, memo))[1]}${res.type}"
        memo[res.urn] = f"{head}::{qualified}::{name}"
    return memo[res.urn]


def previous_urn(res: engine.Registered, by_urn: dict[str, engine.Registered],
                 urns: dict[str, str], memo: dict[str, str]) -> str:
    """The URN the engine looks the resource up by in the old state (step_generator.go rule)."""
    if res.urn not in memo:
        now = urns[res.urn]
        head, _, name = split(now)
        found = now
        parent = by_urn.get(res.parent)
        if any(a.get("spec", {}).get("noParent") for a in res.aliases):
            found = f"{head}::{res.type}::{name}"
        elif parent is not None:
            old_parent = previous_urn(parent, by_urn, urns, memo)
            if old_parent != urns[parent.urn]:  # inheritedChildAlias: the parent's old qualified type
                found = f"{head}::{split(old_parent)[1]}${res.type}::{name}"
        memo[res.urn] = found
    return memo[res.urn]


def mapped(result: engine.Run) -> dict[str, str]:
    """engine URN now -> the URN it is found under in the old state."""
    urns: dict[str, str] = {}
    for r in result.resources.values():
        engine_urn(r, result.resources, urns)
    memo: dict[str, str] = {}
    return {urns[urn]: previous_urn(r, result.resources, urns, memo) for urn, r in result.resources.items()
            if r.type not in NEW_ON_PURPOSE}


@pytest.fixture(scope="module")
def runs() -> dict[str, engine.Run]:
    base = run(prod_b())
    data = prod_b()
    data["config"]["kubehop:workerPolicy"] = "each-hop"
    maintaining = _maintaining(base, data)
    data["config"]["kubehop:kubernetesVersion"] = "1.27"
    return {"adoption": base, "hop-1.27-each-hop": run(data, {"organization/kubehop/prod-b": maintaining.outputs})}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_every_resource_keeps_its_state_through_the_move(runs, name):
    result = runs[name]
    old = mapped(result)
    moved = {new: before for new, before in old.items() if new != before}
    assert moved and all("kubehop:index:Workers$" in new for new in moved)
    # the node side of the old layout, all of it reached (nothing deleted, nothing created again) ...
    node_side = sorted(u for u in BEFORE[name] if split(u)[1].split("$")[0] in MOVED)
    assert node_side and sorted(moved.values()) == node_side
    # ... and nothing else moved: every other resource is where it was
    assert all(split(u)[1].split("$")[0] not in MOVED for u in old.values() if u not in moved.values())


def test_the_node_side_is_one_component(runs):
    result = runs["hop-1.27-each-hop"]
    (workers,) = [r for r in result.resources.values() if r.type == "kubehop:index:Workers"]
    parts = {r.type for r in result.resources.values() if r.parent == workers.urn}
    assert parts == {"kubehop:index:NodeImage", "kubehop:index:Drainer", "kubehop:index:NodeJoin", "kubehop:index:NodePool"}
