"""Shared helpers for tests that run the real program under the mock engine."""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def prod_b() -> dict:
    """The prod-b stack file as a dict (a fresh copy each call)."""
    return yaml.safe_load((ROOT / "Pulumi.prod-b.yaml").read_text())


def write_stack(tmp_path: Path, data: dict, name: str = "Pulumi.test.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def five_masters() -> dict:
    """A different cluster: other names, five masters, no production choreography."""
    data = copy.deepcopy(prod_b())
    cfg = data["config"]
    cfg["kubehop:cluster"] = {"name": "aws-euwest1-stage-c", "region": "eu-west-1", "production": False}
    cfg["aws:region"] = "eu-west-1"
    cfg["kubehop:controlPlane"] = {"nodes": [{"name": f"cp-{i}", "host": f"10.9.{i}.5"} for i in range(5)]}
    for key in ("kubehop:traffic", "kubehop:mysql", "kubehop:kafka", "kubehop:sibling", "kubehop:siblingKubeconfig",
                "kubehop:trafficToken", "kubehop:mysqlPassword"):
        cfg.pop(key)
    cfg["kubehop:workerPolicy"] = "each-hop"
    return data


def steps_by(stage: dict, action: str) -> list[dict]:
    return [s for s in stage["steps"] if s["action"] == action]


def step(stage: dict, action: str, target: str) -> dict:
    found = [s for s in stage["steps"] if s["action"] == action and s["target"] == target]
    assert len(found) == 1, f"expected one {action} step for {target} in stage {stage['name']}, got {len(found)}"
    return found[0]


def ancestors(stage: dict, step_id: str) -> set[str]:
    """Every in-stage step that must finish before `step_id` (dependsOn, transitively)."""
    by_id = {s["id"]: s for s in stage["steps"]}
    seen: set[str] = set()
    todo = list(by_id[step_id]["dependsOn"])
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(by_id[current]["dependsOn"])
    return seen


def release_moves(stages: list[dict], addon: str) -> list[tuple[str, str, str]]:
    """(stage, from, to) for each chart move of `addon`'s release across the whole
    plan (adopt stage included), checking on the way what must hold wherever it
    moves: never down; the addon's CRD step (if it has one) applies the version
    the release runs, in the stage it moves in and before the release."""
    from kubehop.addons.base import chart_key

    installed, moved = None, []
    for s in stages:
        releases = [x for x in steps_by(s, "addon") if x["target"] == addon]
        crds = [x for x in steps_by(s, "addon-crds") if x["target"] == addon]
        for release in releases:
            version = release["inputs"]["version"]
            if installed is not None and version != installed:
                assert chart_key(version) > chart_key(installed), f"{s['name']}: {addon} {installed} -> {version} is a downgrade"
                assert crds, f"{s['name']}: {addon} moves {installed} -> {version} with no CRD step"
                moved.append((s["name"], installed, version))
            for crd in crds:
                assert crd["id"] in ancestors(s, release["id"]), f"{s['name']}: CRDs after the {addon} release"
            installed = version
        for crd in crds:
            assert f"/v{installed}/" in crd["inputs"]["create"], \
                f"{s['name']}: CRDs applied for {crd['inputs']['create']} while {addon} runs {installed}"
    return moved
