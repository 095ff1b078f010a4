"""Pool labels/taints: Kubernetes syntax at config load, never shell code at boot;
the boot script's launch hook: CONTINUE only when the node is Ready at the
expected kubelet, ABANDON otherwise (components/scripts/node_pool/user_data.sh
run for real under bash with the stand-ins of tests/scripts/test_user_data.py)."""
from __future__ import annotations

import base64
import copy
import subprocess
import sys
from pathlib import Path

import pytest

from components.node_pool import user_data
from kubehop import config
from kubehop.config import NodePool, Taint
from kubehop.plan.stages import read_stack_file
from tests.plan_helpers import prod_b, write_stack
from tests.scripts.test_user_data import HOSTNAME, Box

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ['x";touch pwned;echo "', "$(touch pwned)", "`touch pwned`", "a b", "x'y", "a\\nb"]


def _problems(mutate) -> list[config.ConfigProblem]:
    data = copy.deepcopy(prod_b())
    mutate(data["config"]["kubehop:nodePools"][1])
    sf = read_stack_file(data)
    with pytest.raises(config.ConfigErrors) as info:
        config.load(sf.raw, set(sf.secret_keys))
    return info.value.problems


@pytest.mark.parametrize("value", HOSTILE)
def test_a_hostile_or_invalid_label_value_is_refused_naming_the_key(value: str):
    [problem] = _problems(lambda p: p["labels"].update({"dv.io/node-type": value}))
    assert problem.key == "kubehop:nodePools[1].labels.dv.io/node-type" and problem.value == value
    assert "label value" in problem.message and problem.fix


@pytest.mark.parametrize(("key", "why"), [
    ("node-role.kubernetes.io/worker", "kubernetes.io/k8s.io namespace"),
    ("example.k8s.io/x", "kubernetes.io/k8s.io namespace"),
    ("dv.io/$(id)", "name part"),
    ("Dv.io/x", "prefix"),
    ("a/b/c", "more than one"),
    ("/x", "empty prefix"),
    ("x" * 64, "name part"),
])
def test_a_label_key_kubelet_refuses_is_refused(key: str, why: str):
    [problem] = _problems(lambda p: p["labels"].update({key: "v"}))
    assert problem.key == f"kubehop:nodePools[1].labels.{key}" and why in problem.message


@pytest.mark.parametrize("key", ["node.kubernetes.io/pool", "team.kubelet.kubernetes.io/x", "kubernetes.io/arch",
                                 "topology.kubernetes.io/zone", "plain", "a.b-c/d_e.f"])
def test_labels_kubelet_accepts_pass(key: str):
    data = copy.deepcopy(prod_b())
    data["config"]["kubehop:nodePools"][1]["labels"][key] = "ok-1.2_3"
    sf = read_stack_file(data)
    assert config.load(sf.raw, set(sf.secret_keys)).node_pools[1].labels[key] == "ok-1.2_3"


@pytest.mark.parametrize(("field", "value"), [("key", "dv.io/$(x)"), ("value", '"; reboot; "'), ("value", "a b")])
def test_a_bad_taint_is_refused_naming_the_key(field: str, value: str):
    [problem] = _problems(lambda p: p["taints"][0].update({field: value}))
    assert problem.key == f"kubehop:nodePools[1].taints[0].{field}" and problem.value == value


def test_the_plan_exits_2_naming_the_key(tmp_path: Path):
    data = prod_b()
    data["config"]["kubehop:nodePools"][1]["labels"]["dv.io/node-type"] = 'db";touch /tmp/pwned;"'
    path = write_stack(tmp_path, data, "Pulumi.bad.yaml")
    result = subprocess.run([sys.executable, "-m", "kubehop", "plan", "--stack", "bad", "--config", str(path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "kubehop:nodePools[1].labels.dv.io/node-type" in result.stderr and "Traceback" not in result.stderr


def _slipped(labels: dict[str, str], taint_value: str = "true") -> NodePool:
    """A pool that skipped config validation (model_construct): what the boot script must still refuse."""
    return NodePool.model_construct(
        name="batch", asg_name="asg-batch", labels=labels,
        taints=[Taint.model_construct(key="dv.io/x", value=taint_value, effect="NoSchedule")])


@pytest.mark.parametrize("value", HOSTILE)
def test_a_value_that_slips_through_never_runs(tmp_path: Path, value: str):
    box = Box(tmp_path)
    pwned = tmp_path / "pwned"
    for pool in (_slipped({"role": value}), _slipped({}, taint_value=value)):
        box.script.write_text(base64.b64decode(user_data("prod-b", pool)).decode())
        result = box.run()
        assert result.returncode == 1 and "holds characters its consumer does not accept" in result.stderr
        assert not pwned.exists() and box.calls() == []


def _hook_box(tmp_path: Path, seen: list[str]) -> Box:
    box = Box(tmp_path, kubelet="v1.27.16", hook="kubehop-batch-ready")
    state = box.state()
    state["metadata"]["instance-id"] = "i-0123456789abcdef0"
    state["node_seen"] = seen
    box.write_state(state)
    return box


def _completions(box: Box) -> list[list[str]]:
    return [c["argv"] for c in box.calls() if c["argv"][:2] == ["autoscaling", "complete-lifecycle-action"]]


def test_the_launch_hook_continues_only_once_ready_at_the_expected_kubelet(tmp_path: Path):
    box = _hook_box(tmp_path, [" ", "v1.27.16 False", "v1.26.15 True", "v1.27.16 True"])
    result = box.run(KUBEHOP_READY_WAIT="0")
    assert result.returncode == 0, result.stderr
    assert box.state()["completed"] == ["CONTINUE"]
    [argv] = _completions(box)
    assert argv == ["autoscaling", "complete-lifecycle-action", "--region", "eu-west-1", "--lifecycle-hook-name",
                    "kubehop-batch-ready", "--auto-scaling-group-name", "asg-batch", "--instance-id",
                    "i-0123456789abcdef0", "--lifecycle-action-result", "CONTINUE"]
    assert sum(c["cmd"] == "kubectl" for c in box.calls()) == 4
    assert f"node {HOSTNAME} Ready at v1.27.16" in result.stdout


def test_a_node_never_ready_abandons_the_launch(tmp_path: Path):
    box = _hook_box(tmp_path, ["v1.27.16 False"])
    result = box.run(KUBEHOP_READY_WAIT="0", KUBEHOP_READY_TIMEOUT="1")
    assert result.returncode == 1
    assert "is not Ready at kubelet v1.27.16" in result.stderr and "last seen: 'v1.27.16 False'" in result.stderr
    assert box.state()["completed"] == ["ABANDON"]


def test_a_failed_join_abandons_the_launch(tmp_path: Path):
    box = _hook_box(tmp_path, ["v1.27.16 True"])
    box.update(join_rc=1)
    assert box.run().returncode == 1
    assert box.state()["completed"] == ["ABANDON"]
    assert "kubectl" not in [c["cmd"] for c in box.calls()]


def test_the_prod_b_plan_adds_a_launch_hook_with_each_kubehop_template():
    from kubehop.plan.stages import build
    plan = build(read_stack_file(prod_b()), stack="test", to="1.27", policy=None)
    stages = {s["name"]: {step["id"]: step for step in s["steps"]} for s in plan["stages"]}
    assert not [i for i in stages["adopt"] if i.endswith("-launch-hook")], "the adopted templates' nodes never complete it"
    for pool in ("workers", "databases", "spark"):
        hook = stages["1.27.16"][f"{pool}-launch-hook"]
        assert hook["op"] == "create" and hook["inputs"]["lifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
        assert hook["inputs"]["defaultResult"] == "ABANDON" and hook["inputs"]["name"] == f"kubehop-{pool}-ready"
        script = base64.b64decode(stages["1.27.16"][f"{pool}-launch-template"]["inputs"]["userData"]).decode()
        assert f"decode LAUNCH_HOOK '{base64.b64encode(f'kubehop-{pool}-ready'.encode()).decode()}'" in script
        assert f"decode KUBELET_VERSION '{base64.b64encode(b'v1.27.16').decode()}'" in script
