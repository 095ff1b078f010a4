"""An addon never moves down: an adopted release newer than the catalog's pick
for a minor is kept (and imported as it runs, with its own CRDs and check), a
config pin below the running chart is refused, and wherever a release moves its
CRDs precede it at the version it moves to."""
from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from kubehop.addons import SPECS
from kubehop.plan import engine
from kubehop.plan.stages import build, read_stack_file
from tests.plan_helpers import ROOT, prod_b, release_moves, write_stack


@pytest.mark.parametrize("name,running,minor", [
    ("calico", "3.28.5", "1.26"),              # 3.28 tested 1.27-1.30; the 1.26 pick is 3.26.5
    ("calico", "3.30.7", "1.29"),              # 3.30 tested 1.31-1.35; the 1.29 pick is 3.29.7
    ("cluster-autoscaler", "9.36.0", "1.26"),  # the 1.26 pick is 9.28.0
    ("ingress-nginx", "4.13.9", "1.27"),       # 4.13 lists 1.29-1.33; the 1.27 pick is 4.11.8
])
def test_a_release_newer_than_the_pick_is_kept(name, running, minor):
    assert SPECS[name].choose(minor, running) == running


def _plan(data: dict, to: str) -> dict:
    return build(read_stack_file(data), stack="test", to=to, policy=None)


def test_prod_b_calico_moves_once_at_1_31_with_its_crds_first():
    plan = _plan(prod_b(), "1.31")
    assert release_moves(plan["stages"], "calico") == [("1.31.14", "3.28.5", "3.30.7")]
    assert any(w.startswith("calico 3.28.5 runs at Kubernetes 1.26") and "never downgrades" in w for w in plan["warnings"])


def test_an_older_adopted_calico_moves_once_with_its_crds():
    data = prod_b()
    data["config"]["kubehop:adopt"]["addons"]["calico"]["chartVersion"] = "3.26.5"
    plan = _plan(data, "1.29")
    assert release_moves(plan["stages"], "calico") == [("1.29.15", "3.26.5", "3.29.7")]
    assert not [w for w in plan["warnings"] if w.startswith("calico ")]


def test_the_adoption_run_imports_crds_and_checks_at_the_adopted_chart():
    run = engine.run_program(*_raw(prod_b()), stack="prod-b", stack_outputs={}, template_versions={})
    by_name = {r.name: r for r in run.resources.values()}
    assert by_name["calico-addon"].import_id and by_name["calico-addon"].inputs["version"] == "3.28.5"
    assert "/v3.28.5/manifests/operator-crds.yaml" in by_name["calico-addon-crds"].inputs["create"]
    assert "--image-tag v3.28.5 " in by_name["calico-addon-check"].inputs["create"]
    assert run.outputs["kubehop"]["addons"]["calico"] == "3.28.5"


def _raw(data: dict) -> tuple[dict, list]:
    sf = read_stack_file(data)
    return sf.raw, sf.secret_keys


def test_a_config_pin_below_the_running_chart_is_refused(tmp_path):
    data = prod_b()
    data["config"]["kubehop:addons"]["calico"]["chartVersion"] = "3.26.5"  # compatible with 1.26, but down
    path = write_stack(tmp_path, data, "Pulumi.down.yaml")
    result = subprocess.run([sys.executable, "-m", "kubehop", "plan", "--stack", "down", "--config", str(path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "kubehop:addons.calico.chartVersion" in result.stderr and "'3.26.5'" in result.stderr
    assert "never downgrades" in result.stderr and "Traceback" not in result.stderr
    # the program itself refuses it before registering anything (as `pulumi preview` would)
    recorded = {"organization/kubehop/prod-b": {"kubehop": {
        "controlPlaneVersion": "1.26.15", "workerVersion": "1.26.15", "imageVersion": None, "traffic": "serving",
        "mirrorMaker": "running", "amis": copy.deepcopy(data["config"]["kubehop:adopt"]["amis"]),
        "addons": {"calico": "3.28.5"}}}}
    with pytest.raises(Exception) as caught:
        engine.run_program(*_raw(data), stack="prod-b", stack_outputs=recorded, template_versions={})
    assert "kubehop:addons.calico.chartVersion" in str(caught.value)
    assert not [r for r in caught.value.kubehop_run.resources.values() if r.custom and not r.type.startswith("pulumi:")]
