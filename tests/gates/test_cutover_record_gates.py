"""The cutover actions write the cutover record (kubehop/gates/cutover_log.py) in moto's SSM,
before they act and once verified; the switch back applies the recorded undo patch; the canary
deletes the record; sibling-state refuses a sibling whose own record is open.

Real kubectl against loopback API servers (the `cluster` fixture), the loopback DAPP endpoint,
and moto's SSM server on 127.0.0.1 (the `ssm` fixture)."""
from __future__ import annotations

import json

import pytest

from kubehop import cutover_record as cr
from tests.gates.test_cutover import mm, put_switch
from tests.gates.test_traffic_canary import _env, gate, http_args  # noqa: F401 (_env: the autouse token fixture)
from tests.helpers.kube_api import KUBECTL_MINORS
from tests.helpers.moto_server import REGION

pytestmark = pytest.mark.skipif(not KUBECTL_MINORS, reason="no kubectl.1.NN (scripts/install-test-deps.sh says how)")
CLUSTER = "west-b"
TRAFFIC, MYSQL = cr.parameter(CLUSTER, cr.TRAFFIC), cr.parameter(CLUSTER, cr.MYSQL)
MM = cr.parameter(CLUSTER, cr.MIRRORMAKER, CLUSTER)


def log(name: str) -> list[str]:
    return ["--record", name, "--record-region", REGION]


def stored(ssm, name: str) -> dict | None:
    try:
        return json.loads(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ssm.exceptions.ParameterNotFound:
        return None


def switch(cluster, *extra: str):
    return cluster.run("serviceswitch", "--namespace", "prod", "--name", "mysql", "--context", CLUSTER, *extra)


def test_traffic_maintain_records_before_it_asks_and_after_it_verified(ssm, dapp, capsys):
    dapp.post_status = 500  # the traffic control fails the change
    code, err = gate(capsys, "traffic-set", "--cluster", CLUSTER, "--state", "maintaining", "--share", "0",
                     *http_args(dapp), *log(TRAFFIC))
    assert code == 1, err
    # the attempt is on record although it failed: the undo run knows users may have moved
    assert stored(ssm, TRAFFIC) == {"effect": "traffic", "state": "maintaining", "done": False}

    dapp.post_status = 200
    code, err = gate(capsys, "traffic-set", "--cluster", CLUSTER, "--state", "maintaining", "--share", "0",
                     *http_args(dapp), *log(TRAFFIC))
    assert code == 0, err
    assert stored(ssm, TRAFFIC) == {"effect": "traffic", "state": "maintaining", "done": True}
    assert dapp.state[CLUSTER] == {"state": "maintaining", "share": 0}


def test_a_record_that_cannot_be_written_stops_the_action_before_it_acts(ssm, dapp, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:9")  # nothing listens there
    code, err = gate(capsys, "traffic-set", "--cluster", CLUSTER, "--state", "maintaining", "--share", "0",
                     *http_args(dapp), *log(TRAFFIC))
    assert code == 1
    assert "cutover record: writing" in err and "ssm:PutParameter" in err
    assert dapp.posts == []  # users never moved without a record of it


def test_mirrormaker_stop_and_start_are_recorded(ssm, cluster):
    cluster.put_workload(CLUSTER, "kafka", "deployment", "mirrormaker", 2)
    stop = mm(cluster, "stop", *log(MM))
    assert stop.returncode == 0, stop.stderr
    assert stored(ssm, MM) == {"effect": "mirrormaker", "state": "stopped", "done": True}
    start = mm(cluster, "start", *log(MM))
    assert start.returncode == 0, start.stderr
    assert stored(ssm, MM) == {"effect": "mirrormaker", "state": "running", "done": True}


def test_the_switch_records_its_undo_first_and_the_switch_back_applies_it(ssm, cluster):
    put_switch(cluster, CLUSTER, active="prod-b")
    spec = '{"active": "prod-a", "standby": true}'

    cluster.configure(ignore_patches=True)  # a webhook undoes the patch: the switch fails after it asked
    failed = switch(cluster, "--spec-json", spec, *log(MYSQL))
    assert failed.returncode == 1, failed.stderr
    undo = {"spec": {"active": "prod-b", "standby": None}}
    assert stored(ssm, MYSQL) == {"effect": "mysql", "state": "standby", "done": False, "undo": undo}

    cluster.apis[CLUSTER].on_write.clear()
    # someone finished the switch by hand before the re-run: the first recorded undo is kept
    cluster.put(CLUSTER, "prod", "serviceswitch", "mysql", {"metadata": {"generation": 2}, "spec": {
        "active": "prod-a", "standby": True, "service": "mysql", "ports": [3306]}})
    again = switch(cluster, "--spec-json", spec, *log(MYSQL))
    assert again.returncode == 0, again.stderr
    assert "already switched" in again.stderr
    assert stored(ssm, MYSQL) == {"effect": "mysql", "state": "standby", "done": True, "undo": undo}

    back = switch(cluster, "--undo-from-record", *log(MYSQL))
    assert back.returncode == 0, back.stderr
    assert cluster.obj(CLUSTER, "prod", "serviceswitch", "mysql")["spec"] == {"active": "prod-b", "service": "mysql", "ports": [3306]}
    assert stored(ssm, MYSQL) == {"effect": "mysql", "state": "primary", "done": True, "undo": undo}


def test_the_switch_back_refuses_without_a_recorded_undo(ssm, cluster):
    put_switch(cluster, CLUSTER, active="prod-a")
    result = switch(cluster, "--undo-from-record", *log(MYSQL))
    assert result.returncode == 1
    assert "holds no undo patch" in result.stderr and "runbook 6.1.2" in result.stderr
    assert cluster.writes(CLUSTER) == []


def test_the_canary_deletes_the_record_only_once_it_passed(ssm, dapp, capsys):
    for name in (TRAFFIC, MM):
        ssm.put_parameter(Name=name, Value=cr.encode(cr.TRAFFIC if name == TRAFFIC else cr.MIRRORMAKER,
                                                      "maintaining" if name == TRAFFIC else "stopped", done=True),
                          Type="String")
    argv = ["canary", "--cluster", CLUSTER, "--canary-share", "10", "--final-share", "50", "--window", "0",
            "--interval", "0", "--prometheus-url", "http://127.0.0.1:9", "--query", "up=up<=1",
            *http_args(dapp), "--clear-records", cr.path(CLUSTER), "--record-region", REGION]
    code, err = gate(capsys, *argv)  # Prometheus unreachable: the watch fails, users are routed back
    assert code == 1, err
    assert stored(ssm, TRAFFIC) is not None and stored(ssm, MM) is not None
    assert cr.decode(CLUSTER, ((n, v) for n, v in _all(ssm).items())).open


def _all(ssm) -> dict[str, str]:
    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path="/kubehop", Recursive=True)
    return {p["Name"]: p["Value"] for page in pages for p in page["Parameters"]}


def test_sibling_state_refuses_a_sibling_whose_record_is_open(ssm, dapp, capsys):
    argv = ["sibling-state", "--cluster", "west-a", "--min-share", "50", "--traffic-kind", "http",
            "--traffic-url", dapp.url, "--timeout", "0", "--interval", "0",
            "--sibling-record-path", cr.path("west-a"), "--record-region", REGION]
    code, err = gate(capsys, *argv)
    assert code == 0, err
    assert "west-a has no open cutover record" in err

    # the sibling's own maintaining run got as far as its first action, then failed
    ssm.put_parameter(Name=cr.parameter("west-a", cr.TRAFFIC), Value=cr.encode(cr.TRAFFIC, "maintaining", done=False),
                      Type="String")
    code, err = gate(capsys, *argv)
    assert code == 1
    assert "west-a's cutover record is open (traffic)" in err


def test_a_start_after_a_stop_that_never_scaled_leaves_mirrormaker_running(ssm, cluster):
    # the stop wrote its record, then failed before it annotated and scaled: MirrorMaker still runs
    cluster.put_workload(CLUSTER, "kafka", "deployment", "mirrormaker", 2)
    ssm.put_parameter(Name=MM, Value=cr.encode(cr.MIRRORMAKER, "stopped", done=False), Type="String")
    start = mm(cluster, "start", *log(MM))
    assert start.returncode == 0, start.stderr
    assert "already started (2 replicas)" in start.stderr and cluster.writes(CLUSTER) == []
    # an annotation from an earlier cycle is no order to rescale a running MirrorMaker
    cluster.put_workload(CLUSTER, "kafka", "deployment", "mirrormaker", 2, annotations={"kubehop.io/replicas-before-stop": "5"})
    again = mm(cluster, "start", *log(MM))
    assert again.returncode == 0, again.stderr
    assert cluster.obj(CLUSTER, "kafka", "deployment", "mirrormaker")["spec"]["replicas"] == 2
