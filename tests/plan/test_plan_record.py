"""`plan --record FILE`: planning from the cutover record a maintaining run left (issue 13 item 1)."""
from __future__ import annotations

import json

import pytest

from kubehop import cutover_record as cr
from tests.plan.test_plan import plan_cli
from tests.plan_helpers import prod_b, write_stack

ME = "aws-uswest2-prod-b"
RECORDED = {"kubehop": {"controlPlaneVersion": "1.26.15", "workerVersion": "1.26.15", "imageVersion": None,
                        "traffic": "serving", "mirrorMaker": "running",
                        "amis": {"worker": "ami-0a1b2c3d4e5f60718", "spark": "ami-0b2c3d4e5f6071829"},
                        "addons": {"calico": "3.28.5", "ingress-nginx": "4.11.8"}}}


def files(tmp_path, entries: dict[str, str], state: str = "serving"):
    data = prod_b()
    data["config"]["kubehop:traffic"]["state"] = state
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(RECORDED))
    record = tmp_path / "record.json"
    record.write_text(json.dumps({"Parameters": [{"Name": n, "Value": v, "Type": "String", "Version": 1}
                                                 for n, v in entries.items()]}))
    return ["--config", str(write_stack(tmp_path, data)), "--outputs", str(outputs), "--record", str(record)]


def only_traffic() -> dict[str, str]:
    return {cr.parameter(ME, cr.TRAFFIC): cr.encode(cr.TRAFFIC, "maintaining", done=False)}


def test_a_run_that_failed_at_traffic_maintain_is_undone_by_traffic_alone(tmp_path):
    done = plan_cli("--stack", "prod-b", "--json", *files(tmp_path, only_traffic()))
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    (restore,) = plan["stages"]
    assert restore["name"] == "restore" and restore["config"] == {"kubehop:traffic.state": "serving"}
    created = sorted(s["action"] for s in restore["steps"] if s["op"] == "create")
    assert created == ["canary", "traffic-serve"]  # nothing else was changed, nothing else is undone
    assert plan["cutoverRecord"] == {"traffic": "maintaining, not verified"}


def test_resuming_the_maintaining_run_shows_every_maintaining_step_and_no_undo(tmp_path):
    done = plan_cli("--stack", "prod-b", "--to", "1.27", "--json", *files(tmp_path, only_traffic(), "maintaining"))
    assert done.returncode == 0, done.stderr
    stages = json.loads(done.stdout)["stages"]
    assert [s["name"] for s in stages][:2] == ["prepare", "maintaining"]
    actions = {s["action"] for s in stages[1]["steps"] if s["op"] == "create"}
    assert {"traffic-maintain", "mysql-switch", "mirrormaker-stop", "kafka-lag-gate"} <= actions
    assert "canary" not in actions


def test_the_text_plan_names_the_record(tmp_path):
    done = plan_cli("--stack", "prod-b", *files(tmp_path, only_traffic()))
    assert done.returncode == 0, done.stderr
    assert "cutover record: traffic: maintaining, not verified" in done.stdout
    assert "Stage 1/1: restore" in done.stdout


@pytest.mark.parametrize("content, why", [
    ("[]", "is not the JSON of `aws ssm get-parameters-by-path`"),
    ("{\"Parameters\": [{\"Name\": \"/kubehop/aws-uswest2-prod-b/cutover/traffic\", \"Value\": \"{\"}]}",
     "is not a kubehop cutover record"),
    ("\xff", "cannot be read as JSON"),
])
def test_a_bad_record_file_exits_2(tmp_path, content, why):
    argv = files(tmp_path, {})
    (tmp_path / "record.json").write_bytes(content.encode("latin-1"))
    done = plan_cli("--stack", "prod-b", *argv)
    assert done.returncode == 2
    assert why in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_removing_kafka_while_the_record_says_mirrormaker_stopped_is_refused(tmp_path):
    entries = {**only_traffic(), cr.parameter(ME, cr.MIRRORMAKER, ME): cr.encode(cr.MIRRORMAKER, "stopped", done=True)}
    argv = files(tmp_path, entries)
    data = prod_b()
    del data["config"]["kubehop:kafka"]
    argv[1] = str(write_stack(tmp_path, data))
    done = plan_cli("--stack", "prod-b", *argv)
    assert done.returncode == 2
    assert "kubehop:kafka: was removed while the cutover record says MirrorMaker was stopped on aws-uswest2-prod-b" in done.stderr
