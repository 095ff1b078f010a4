"""The cutover record's model (kubehop/cutover_record.py): names, values, what counts as open,
the undo patch, and what each cutover action leaves in it for the offline plan."""
from __future__ import annotations

import pytest

from kubehop import cutover_record as cr

CLUSTER = "aws-uswest2-prod-b"


def test_names_live_under_the_clusters_path():
    assert cr.path(CLUSTER) == "/kubehop/aws-uswest2-prod-b/cutover"
    assert cr.parameter(CLUSTER, cr.MIRRORMAKER, "aws-uswest2-prod-a") == "/kubehop/aws-uswest2-prod-b/cutover/mirrormaker/aws-uswest2-prod-a"
    with pytest.raises(ValueError):
        cr.parameter(CLUSTER, "dns")
    with pytest.raises(ValueError):
        cr.path("prod b")  # SSM names hold letters, digits and _.-/ only


def test_decode_reads_every_effect_and_ignores_other_paths():
    pairs = [(cr.parameter(CLUSTER, cr.TRAFFIC), cr.encode(cr.TRAFFIC, "maintaining", done=True)),
             (cr.parameter(CLUSTER, cr.MYSQL), cr.encode(cr.MYSQL, "standby", done=False, undo={"spec": {"active": "b"}})),
             (cr.parameter(CLUSTER, cr.MIRRORMAKER, "aws-uswest2-prod-a"), cr.encode(cr.MIRRORMAKER, "stopped", done=True)),
             ("/kubehop/other/cutover/traffic", "not even json")]
    record = cr.decode(CLUSTER, pairs)
    assert record.open
    assert record.mirrormaker == ["aws-uswest2-prod-a"]
    assert record.get(cr.MYSQL).undo == {"spec": {"active": "b"}}
    assert record.summary() == {"traffic": "maintaining", "mysql": "standby, not verified",
                                "mirrormaker/aws-uswest2-prod-a": "stopped"}
    assert not cr.decode(CLUSTER, []).open


@pytest.mark.parametrize("name, value", [
    ("traffic", "{"),                                                      # not JSON
    ("traffic", '{"effect": "mysql", "state": "standby", "done": true}'),  # effect is not the name's
    ("traffic", '{"effect": "traffic", "state": "gone", "done": true}'),   # no such state
    ("traffic", '{"effect": "traffic", "state": "maintaining", "done": "yes"}'),
    ("mirrormaker", '{"effect": "mirrormaker", "state": "stopped", "done": true}'),  # which cluster's?
    ("mysql", '{"effect": "mysql", "state": "standby", "done": true, "undo": [1]}'),
    ("dns", '{"effect": "dns", "state": "x", "done": true}'),
])
def test_a_record_kubehop_cannot_read_is_refused_never_guessed(name, value):
    with pytest.raises(cr.RecordError) as err:
        cr.decode(CLUSTER, [(f"{cr.path(CLUSTER)}/{name}", value)])
    problem = err.value.problems[0]
    assert problem.key.endswith(name) and problem.secret and "aws ssm get-parameter" in problem.fix


def test_the_invoke_result_pairs_names_and_values():
    name = cr.parameter(CLUSTER, cr.TRAFFIC)
    record = cr.from_invoke(CLUSTER, {"names": [name], "values": [cr.encode(cr.TRAFFIC, "maintaining", done=False)]})
    assert record.get(cr.TRAFFIC).state == "maintaining"
    assert not cr.from_invoke(CLUSTER, {"names": [], "values": []}).open
    with pytest.raises(cr.RecordError):
        cr.from_invoke(CLUSTER, {"names": [name], "values": []})


def test_the_cli_json_is_the_apis_response_shape():
    assert cr.from_cli_json({"Parameters": [{"Name": "/a", "Value": "v", "Type": "String", "Version": 3}]}) == {"/a": "v"}
    for bad in ([], {"Parameters": {}}, {"Parameters": [{"Name": "/a"}]}):
        with pytest.raises(cr.RecordError):
            cr.from_cli_json(bad)


@pytest.mark.parametrize("target, patch, undo", [
    ({"spec": {"active": "prod-b", "ports": [3306]}}, {"spec": {"active": "prod-a"}}, {"spec": {"active": "prod-b"}}),
    ({"spec": {}}, {"spec": {"active": "prod-a"}}, {"spec": {"active": None}}),         # absent before: removed again
    ({}, {"spec": {"active": "prod-a"}}, {"spec": None}),
    ({"spec": {"mode": {"a": 1}}}, {"spec": {"mode": "flat"}}, {"spec": {"mode": {"a": 1}}}),
    ({"spec": {"old": 1}}, {"spec": {"old": None}}, {"spec": {"old": 1}}),              # a removal is put back
])
def test_the_undo_patch_puts_back_what_the_patch_changes(target, patch, undo):
    assert cr.reverse_merge_patch(target, patch) == undo


def test_what_each_action_leaves_in_the_record():
    traffic = cr.parameter(CLUSTER, cr.TRAFFIC)
    mm = cr.parameter(CLUSTER, cr.MIRRORMAKER, "aws-uswest2-prod-a")
    mysql = cr.parameter(CLUSTER, cr.MYSQL)
    assert cr.written_by(CLUSTER, "traffic-set", ["--state", "maintaining", "--record", traffic]) == (
        traffic, cr.encode(cr.TRAFFIC, "maintaining", done=True))
    assert cr.written_by(CLUSTER, "mirrormaker", ["--action", "stop", "--record", mm])[1] == cr.encode(cr.MIRRORMAKER, "stopped", done=True)
    assert cr.written_by(CLUSTER, "mirrormaker", ["--action", "start", "--record", mm])[1] == cr.encode(cr.MIRRORMAKER, "running", done=True)
    assert cr.written_by(CLUSTER, "serviceswitch", ["--undo-from-record", "--record", mysql])[1] == cr.encode(cr.MYSQL, "primary", done=True)
    assert cr.written_by(CLUSTER, "canary", ["--clear-records", cr.path(CLUSTER)]) == (cr.path(CLUSTER), None)
    assert cr.written_by(CLUSTER, "traffic-set", ["--state", "available"]) is None
    assert cr.written_by(CLUSTER, "traffic-set", ["--record", "/kubehop/other/cutover/traffic"]) is None
