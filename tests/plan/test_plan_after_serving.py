"""`nodePools[].rollout: after-serving` (issue 14): a stateless pool keeps its kubelet through the
maintenance window, while the skew policy allows it, and rolls in the serving run once the canary
has passed: outside the window, which the plan shows."""
from __future__ import annotations

import json

import pytest

from kubehop.plan.stages import build, read_stack_file
from tests.plan.test_plan import plan_cli
from tests.plan_helpers import ancestors, prod_b, step, write_stack


def config(**spark) -> dict:
    data = prod_b()
    for pool in data["config"]["kubehop:nodePools"]:
        if pool["name"] == "spark":
            pool.update({"rollout": "after-serving", **spark})
    return data


def plan(data: dict, to: str = "1.29") -> dict:
    return build(read_stack_file(data), stack="prod-b", to=to, policy=None)


def stage(p: dict, name: str) -> dict:
    return next(s for s in p["stages"] if s["name"] == name)


def moved(s: dict, pool: str) -> list[str]:
    return sorted(x["action"] for x in s["steps"] if x["target"] == pool and x["op"] not in ("delete",))


def test_the_pool_keeps_its_kubelet_in_the_window_and_rolls_after_the_canary():
    p = plan(config())
    last = stage(p, "1.29.15")
    assert moved(last, "spark") == []  # the other pools roll here; spark does not
    assert moved(last, "workers") and moved(last, "databases")
    nodes = step(last, "verify", "nodes")["inputs"]["create"]
    assert "--worker-version v1.29.15 --pool-version spark=v1.26.15" in nodes  # held to what it runs
    serving = stage(p, "serving")
    assert moved(serving, "spark") == ["launch-hook", "launch-template", "node-pool", "rollout-wait"]
    canary = step(serving, "canary", "aws-uswest2-prod-b")
    assert canary["id"] in ancestors(serving, step(serving, "node-pool", "spark")["id"])
    rolled = [x for x in serving["steps"] if x["target"] == "spark" and x["op"] != "delete"]
    assert rolled and not any(x["inWindow"] for x in rolled)
    assert step(serving, "traffic-serve", "aws-uswest2-prod-b")["inWindow"]
    # the image was built for it in prepare, as for every pool
    assert "--kubelet-version v1.29.15" in step(serving, "rollout-wait", "spark")["inputs"]["create"]


def test_a_pool_on_the_critical_path_shortens_the_window():
    slow = {"estimates": {"rollout-wait": 240}}  # spark is the slowest pool: 4 h
    inside, after = plan(config(rollout="in-window", **slow)), plan(config(**slow))
    assert after["estimate"]["windowMinutes"] < inside["estimate"]["windowMinutes"] - 100
    assert after["estimate"]["totalMinutes"] >= inside["estimate"]["totalMinutes"] - 1


def test_a_pool_the_skew_policy_cannot_keep_is_refused(tmp_path):
    done = plan_cli("--stack", "prod-b", "--config", str(write_stack(tmp_path, config())), "--to", "1.30")
    assert done.returncode == 2
    assert "kubehop:nodePools[2].rollout" in done.stderr and "outside the kubelet skew policy" in done.stderr
    assert "set rollout: in-window" in done.stderr


@pytest.mark.parametrize("edit, why", [
    (lambda d: d["config"]["kubehop:nodePools"][1].update(rollout="after-serving"), "is for stateless pools"),
    (lambda d: d["config"].pop("kubehop:traffic"), "needs kubehop:traffic"),
])
def test_after_serving_is_refused_where_it_means_nothing(tmp_path, edit, why):
    data = config()
    edit(data)
    done = plan_cli("--stack", "prod-b", "--config", str(write_stack(tmp_path, data)), "--json")
    assert done.returncode == 2, done.stdout[:300]
    assert why in done.stderr and "nodePools[" in done.stderr


def test_json_marks_every_step_in_or_out_of_the_window():
    p = json.loads(json.dumps(plan(config())))
    assert all(isinstance(x["inWindow"], bool) for s in p["stages"] for x in s["steps"])
    assert not any(x["inWindow"] for x in stage(p, "prepare")["steps"])
    assert all(x["inWindow"] for x in stage(p, "1.28.15")["steps"])


def test_the_next_journey_keeps_the_pool_on_its_own_image_until_it_rolls_again():
    """A role all of whose pools roll after serving never moves its role AMI: a run that rolls
    no image keeps each such pool on its own recorded AMI, never back on the adopted template."""
    data = config()
    data["config"]["kubehop:kubernetesVersion"] = "1.28.15"
    adopted_spark = data["config"]["kubehop:adopt"]["amis"]["spark"]
    recorded = {"controlPlaneVersion": "1.28.15", "workerVersion": "1.28.15", "imageVersion": "1.28.15",
                "traffic": "serving", "mirrorMaker": "running",
                "amis": {"worker": "ami-0worker128000000", "spark": adopted_spark},
                "addons": {"calico": "3.28.5", "ingress-nginx": "4.11.8"},
                "pools": {"spark": {"version": "1.28.15", "ami": "ami-0spark1280000000"}}}
    p = build(read_stack_file(data), stack="prod-b", to="1.29", policy=None, recorded=recorded)
    prepare = stage(p, "prepare")
    assert moved(prepare, "spark") == [] or "node-pool" not in moved(prepare, "spark"), moved(prepare, "spark")
    for s in p["stages"]:
        template = [x for x in s["steps"] if x["id"] == "spark-launch-template" and x["op"] != "delete"]
        assert all(adopted_spark not in json.dumps(x["inputs"]) for x in template), s["name"]
