"""The adoption run imports cleanly; state moves only with steps that ran; secrets keep identities."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubehop.plan import engine, imports
from kubehop.plan.stages import diff_stage, read_stack_file
from tests.plan_helpers import prod_b

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "import_readback"
SELF = "organization/kubehop/prod-b"


def run(data: dict, outputs: dict | None = None, untargeted: dict | None = None) -> engine.Run:
    sf = read_stack_file(data)
    return engine.run_program(sf.raw, sf.secret_keys, stack="prod-b", stack_outputs=outputs or {},
                              template_versions={}, untargeted=untargeted)


@pytest.fixture(scope="module")
def adoption() -> engine.Run:
    return run(prod_b())


def _imports(r: engine.Run) -> dict[str, engine.Registered]:
    return {res.import_id: res for res in r.resources.values() if res.import_id}


def test_adoption_inputs_equal_what_the_providers_read_back(adoption):
    readback = {**json.loads((FIXTURES / "helm.json").read_text()), **json.loads((FIXTURES / "asg.json").read_text())}
    found = _imports(adoption)
    assert set(found) == set(readback)
    for import_id, res in found.items():
        read = readback[import_id]
        ignored = set(res.ignore_changes)
        declared = {k: v for k, v in res.inputs.items()
                    if k not in ignored and k not in imports.CHECK_DROPS.get(res.type, ())}
        assert imports.unreadable_inputs(res.type, res.inputs, res.ignore_changes) == [], import_id
        for key, value in declared.items():
            expected = read[key]
            if key == "launchTemplate":  # id and version declared; the name is Optional+Computed
                expected = {k: v for k, v in expected.items() if k in value}
            assert value == expected, f"{import_id}: {key} differs from the read-back"
        # every read-back field the program leaves out is ignored (or defaulted by Check: helm timeout)
        left_out = set(read) - set(declared) - ignored - {"timeout"}
        assert not left_out, f"{import_id}: an import would remove or reset {left_out}"


def test_adding_an_input_to_an_import_is_refused():
    res = engine.Registered("u", "aws:autoscaling/group:Group", "g", "", True, [], {"name": "x", "instanceRefresh": {}},
                            "g", True, [])
    assert imports.unreadable_inputs(res.type, res.inputs, res.ignore_changes) == ["instanceRefresh"]
    rel = {"name": "a", "namespace": "b", "chart": "c", "version": "1", "values": {}, "atomic": True, "compat": "true"}
    assert imports.unreadable_inputs("kubernetes:helm.sh/v3:Release", rel, []) == ["atomic"]


def test_imports_only_on_the_adoption_run_and_the_next_brings_settings(adoption):
    after = run(prod_b(), {SELF: adoption.outputs})
    assert not _imports(after)
    changed = {s["id"]: s for s in diff_stage(adoption, after, set())}
    for name in ("cluster-autoscaler-addon", "workers-node-pool"):
        assert changed[name]["op"] == "update"
    assert "instanceRefresh" in changed["workers-node-pool"]["inputs"]
    assert changed["cluster-autoscaler-addon"]["inputs"]["atomic"] is True


def test_a_targeted_run_records_nothing_new(adoption):
    data = prod_b()
    data["config"]["kubehop:traffic"]["state"] = "maintaining"
    maintaining = run(data, {SELF: adoption.outputs})
    data["config"]["kubehop:kubernetesVersion"] = "1.27"
    full = run(data, {SELF: maintaining.outputs})
    assert full.outputs["kubehop"]["controlPlaneVersion"] == "1.27.16"
    # --target on the control plane only: every other step keeps its old state (engine rule)
    old = {r.name: (f"{r.name}-id", _old_outputs(maintaining, r.name)) for r in maintaining.resources.values()
           if r.type.startswith("command:") and "master" not in r.name}
    targeted = run(data, {SELF: maintaining.outputs}, untargeted=old)
    assert targeted.outputs["kubehop"]["controlPlaneVersion"] == maintaining.outputs["kubehop"]["controlPlaneVersion"]
    assert targeted.outputs["kubehop"]["traffic"] == "maintaining"


def _old_outputs(r: engine.Run, name: str) -> dict:
    # what a run of this step left in the state: its inputs and what its gate printed
    res = next(x for x in r.resources.values() if x.name == name)
    return {**res.inputs, "stdout": engine.gate_stdout(res.inputs.get("create", "")), "stderr": ""}


def _rotated(key: str) -> dict:
    data = prod_b()
    data["config"][key] = {"secure": "v1:rotated-ciphertext"}
    return data


def _changed(a: engine.Run, b: engine.Run) -> set[str]:
    return {s["id"] for s in diff_stage(a, b, set())}


@pytest.mark.parametrize("key", ["kubehop:kubeconfig", "kubehop:sshPrivateKey"])
def test_rotating_a_secret_changes_exactly_the_steps_that_use_it(adoption, key):
    rotated = run(_rotated(key), {})
    label = "[secret:" + key.split(":")[1] + "@"
    users = {r.name for r in adoption.resources.values() if label in json.dumps(r.inputs)
             and r.custom and not r.type.startswith("pulumi:")}
    assert users and _changed(adoption, rotated) == users


def test_the_sibling_mirrormaker_steps_use_the_sibling_kubeconfig(adoption):
    data = prod_b()
    data["config"]["kubehop:traffic"]["state"] = "maintaining"
    maintaining = run(data, {SELF: adoption.outputs})
    steps = {r.name: json.dumps(r.inputs) for r in maintaining.resources.values()}
    sibling, own = steps["aws-uswest2-prod-a-mirrormaker-stop"], steps["aws-uswest2-prod-b-mirrormaker-stop"]
    assert "[secret:siblingKubeconfig@" in sibling and "[secret:kubeconfig@" not in sibling
    assert "[secret:kubeconfig@" in own and "siblingKubeconfig" not in own
    rotated = _rotated("kubehop:siblingKubeconfig")
    rotated["config"]["kubehop:traffic"]["state"] = "maintaining"
    assert _changed(maintaining, run(rotated, {SELF: adoption.outputs})) == {"aws-uswest2-prod-a-mirrormaker-stop"}


def test_no_command_has_an_absolute_dir_or_previous_output_in_env(adoption):
    commands = [r for r in adoption.resources.values() if r.type.startswith("command:")]
    assert commands
    for r in commands:
        assert "dir" not in r.inputs, r.name
        assert r.inputs.get("addPreviousOutputInEnv") is False, r.name


def test_pools_wait_for_the_drainer_queue_policy_and_targets(adoption):
    from kubehop.plan.stages import _closure, _expand

    closure = _closure(_expand(adoption))
    urn = {r.name: u for u, r in adoption.resources.items()}
    for dep in ("node-termination-queue-policy", "node-termination-asg-termination-target"):
        assert urn[dep] in closure[urn["workers-node-pool"]]


def test_aws_region_contradicting_cluster_region_is_a_config_error():
    data = prod_b()
    data["config"]["aws:region"] = "eu-west-1"
    with pytest.raises(Exception) as info:
        run(data)
    assert "aws:region" in str(info.value) and info.value.kubehop_run.resources == {}
