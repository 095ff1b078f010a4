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
