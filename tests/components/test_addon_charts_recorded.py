"""The chart each addon runs is recorded from its check having passed (the check
proves the release's deployed revision runs it), never from what the program
declared: a targeted run, or a run whose check did not pass, records no move."""
from __future__ import annotations

import copy

from kubehop import record
from kubehop.plan import engine
from kubehop.plan.stages import read_stack_file
from tests.plan_helpers import prod_b

SELF = "organization/kubehop/prod-b"


def _state(addons: dict[str, str]) -> dict:
    data = prod_b()["config"]
    return {"controlPlaneVersion": "1.28.15", "workerVersion": "1.26.15", "imageVersion": "1.29.15",
            "traffic": "maintaining", "mirrorMaker": "stopped", "amis": copy.deepcopy(data["kubehop:adopt"]["amis"]),
            "addons": dict(addons)}


def _run(addons: dict[str, str], untargeted: dict | None = None) -> engine.Run:
    data = prod_b()
    data["config"]["kubehop:kubernetesVersion"] = "1.29"
    data["config"]["kubehop:traffic"]["state"] = "maintaining"
    sf = read_stack_file(data)
    return engine.run_program(sf.raw, sf.secret_keys, stack="prod-b", stack_outputs={SELF: {"kubehop": _state(addons)}},
                              template_versions={}, untargeted=untargeted)


def _by_name(run: engine.Run) -> dict[str, engine.Registered]:
    return {r.name: r for r in run.resources.values()}


def test_the_check_proves_the_chart_it_records():
    full = _run({"calico": "3.26.5"})
    check = _by_name(full)["calico-addon-check"].inputs["create"]
    assert "--release tigera-operator/calico --chart-version 3.29.7 " in check
    assert full.outputs["kubehop"]["addons"]["calico"] == "3.29.7"


def test_a_targeted_run_records_no_addon_move():
    # `--target` elsewhere: the calico check keeps the stdout of the run that last passed it (engine rule)
    old_line = record.line("addon-check", ["--addon", "calico", "--chart-version", "3.26.5"]) + "\n"
    targeted = _run({"calico": "3.26.5"}, untargeted={"calico-addon-check": ("calico-addon-check-id", {"stdout": old_line})})
    assert _by_name(targeted)["calico-addon"].inputs["version"] == "3.29.7"  # declared, not proven
    assert targeted.outputs["kubehop"]["addons"]["calico"] == "3.26.5"


def test_a_check_that_printed_nothing_records_nothing():
    previous = {"addons": {"calico": "3.26.5", "ingress-nginx": "4.11.8"}}
    passed = record.line("addon-check", ["--addon", "ingress-nginx", "--chart-version", "4.12.8"])
    state = record.recorded_state(previous, {"addon:calico": "", "addon:ingress-nginx": passed})
    assert state["addons"] == {"calico": "3.26.5", "ingress-nginx": "4.12.8"}
    # another gate's line under an addon key proves nothing about the chart
    other = record.line("nodes", ["--chart-version", "9.9.9"])
    assert record.recorded_state(previous, {"addon:calico": other})["addons"]["calico"] == "3.26.5"


def test_the_adoption_run_records_what_each_check_proved():
    sf = read_stack_file(prod_b())
    adoption = engine.run_program(sf.raw, sf.secret_keys, stack="prod-b", stack_outputs={}, template_versions={})
    recorded = adoption.outputs["kubehop"]["addons"]
    checks = {r.name.removesuffix("-addon-check"): r.inputs["create"] for r in adoption.resources.values()
              if r.name.endswith("-addon-check")}
    assert set(recorded) == set(checks)
    for name, chart in recorded.items():
        assert f"--chart-version {chart} " in checks[name], name
    adopted = prod_b()["config"]["kubehop:adopt"]["addons"]
    assert {n: recorded[n] for n in adopted} == {n: a["chartVersion"] for n, a in adopted.items()}
