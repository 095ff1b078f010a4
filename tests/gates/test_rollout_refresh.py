# ruff: noqa: F811  (the moto and API-server fixtures are imported by name from tests/gates/test_rollout.py)
"""`rollout --manage-refresh`: the gate steers the group's instance refresh.

EC2 and Auto Scaling groups come from a real moto server on 127.0.0.1 and the
nodes from the loopback API server, as in tests/gates/test_rollout.py. moto
serves no instance-refresh API, so the refresh calls go to a separate client
with botocore's Stubber: each response is shaped like the AWS Auto Scaling API
reference (DescribeInstanceRefreshes -> InstanceRefreshes[] with
InstanceRefreshId, AutoScalingGroupName, Status, StatusReason, StartTime,
PercentageComplete, InstancesToUpdate, Preferences, Strategy; StartInstanceRefresh
and CancelInstanceRefresh -> InstanceRefreshId), and the Stubber itself checks
every request and response against botocore's service model of that API.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.stub import Stubber

from kubehop.gates import cli, rollout as rollout_gate
from tests.gates.test_rollout import NEW_K8S, OLD_K8S, REGION, cloud, nodes, rollout  # noqa: F401  (fixtures)

PREFS = ["--min-healthy-percentage", "100", "--max-healthy-percentage", "110", "--instance-warmup", "300"]
API_PREFS = {"MinHealthyPercentage": 100, "MaxHealthyPercentage": 110, "InstanceWarmup": 300, "SkipMatching": True}


def refresh(group: str, rid: str, status: str, *, start: datetime | None = None, reason: str | None = None,
            desired_version: str | None = None) -> dict:
    out = {"InstanceRefreshId": rid, "AutoScalingGroupName": group, "Status": status,
           "StartTime": start or datetime.now(timezone.utc), "PercentageComplete": 33, "InstancesToUpdate": 2,
           "Preferences": {"MinHealthyPercentage": 100, "InstanceWarmup": 300, "SkipMatching": True}, "Strategy": "Rolling"}
    if reason:
        out["StatusReason"] = reason
    if status in ("Successful", "Failed", "Cancelled"):
        out["EndTime"] = datetime.now(timezone.utc)
    if desired_version:
        out["DesiredConfiguration"] = {"LaunchTemplate": {"LaunchTemplateName": "prod-b-workers", "Version": desired_version}}
    return out


@pytest.fixture
def stub(monkeypatch):
    client = boto3.client("autoscaling", region_name=REGION, endpoint_url="http://127.0.0.1:9")
    stubber = Stubber(client)
    stubber.activate()
    monkeypatch.setattr(rollout_gate, "refresh_client", lambda args: client)
    yield stubber
    stubber.assert_no_pending_responses()
    stubber.deactivate()


def describe(stub: Stubber, group: str, *refreshes: dict) -> None:
    stub.add_response("describe_instance_refreshes", {"InstanceRefreshes": list(refreshes)},
                      {"AutoScalingGroupName": group, "MaxRecords": 10})


def cancel(stub: Stubber, group: str, rid: str) -> None:
    stub.add_response("cancel_instance_refresh", {"InstanceRefreshId": rid}, {"AutoScalingGroupName": group})


def first_batch(cloud, nodes, group: str, *, new_nodes: bool) -> tuple[list[dict], list[dict]]:
    """The refresh's first batch: the group on v2, one old instance replaced (from the new image)."""
    old = cloud.instances(group)
    cloud.autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=group, LaunchTemplate={"LaunchTemplateId": cloud.lt_id, "Version": "2"})
    cloud.autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=old[0]["InstanceId"], ShouldDecrementDesiredCapacity=False)
    now = cloud.instances(group)
    new = [i for i in now if i["InstanceId"] not in {o["InstanceId"] for o in old}]
    assert len(new) == 1 and new[0]["ImageId"] == cloud.new_ami
    nodes.set([nodes.node(i, OLD_K8S) for i in old[1:]] + ([nodes.node(i, NEW_K8S) for i in new] if new_nodes else []))
    return old, new


def gate(capsys, cloud, nodes, group: str, *extra: str) -> tuple[int, str]:
    return rollout(capsys, cloud, nodes, group, "--launch-template-version", "2", "--image-id", cloud.new_ami,
                   "--manage-refresh", *PREFS, *extra)


def run(capsys, cloud, nodes, group: str, *extra: str) -> tuple[int, str]:
    """Several looks, until the gate ends: its last line."""
    code, err = gate_all(capsys, cloud, nodes, group, "--timeout", "120", "--interval", "0", *extra)
    return code, err.strip().splitlines()[-1]


def test_new_nodes_never_ready_stop_after_the_first_batch_and_cancel_the_refresh(cloud, nodes, capsys, stub):
    group = cloud.group("1")
    _, new = first_batch(cloud, nodes, group, new_nodes=False)
    describe(stub, group, refresh(group, "r-1", "InProgress"))  # gate failing: what is active?
    cancel(stub, group, "r-1")
    code, line = gate(capsys, cloud, nodes, group, "--join-bound", "0")
    assert code == 1
    iid = new[0]["InstanceId"]
    assert "failed: new instances never became Ready nodes" in line and "within" not in line  # at once, not at the timeout
    assert f"{iid} ({cloud.new_ami}, InService, launched" in line and "no Kubernetes node after the 0s bound" in line
    assert line.endswith("refresh r-1 InProgress 33% cancelled")


def test_within_the_join_bound_the_gate_waits_on_the_refresh(cloud, nodes, capsys, stub):
    group = cloud.group("1")
    first_batch(cloud, nodes, group, new_nodes=False)
    describe(stub, group, refresh(group, "r-1", "InProgress"))        # the look
    describe(stub, group, refresh(group, "r-1", "InProgress"))        # timeout: cancel
    cancel(stub, group, "r-1")
    code, line = gate(capsys, cloud, nodes, group, "--join-bound", "3600")
    assert code == 1 and "did not pass within 0s: refresh r-1 InProgress 33%" in line
    assert "never became Ready" not in line and line.endswith("refresh r-1 InProgress 33% cancelled")


def test_a_watched_refresh_that_fails_fails_the_gate_at_once(cloud, nodes, capsys, stub):
    group = cloud.group("1")
    first_batch(cloud, nodes, group, new_nodes=True)
    describe(stub, group, refresh(group, "r-1", "InProgress"))
    reason = "Instance refresh failed: 1 instance(s) failed to launch"
    describe(stub, group, refresh(group, "r-1", "Failed", reason=reason))
    describe(stub, group, refresh(group, "r-1", "Failed", reason=reason))  # nothing active to cancel
    code, line = run(capsys, cloud, nodes, group)
    assert code == 1
    assert f"failed: refresh r-1 Failed 33% ({reason}): the rollout stopped" in line
    assert line.endswith("no active refresh to cancel") and "within" not in line


@pytest.mark.parametrize("ended", ["Cancelled", "Failed", "RollbackSuccessful"])
def test_a_rerun_after_a_cancel_starts_a_new_refresh_and_a_timeout_cancels_it(cloud, nodes, capsys, stub, ended):
    group = cloud.group("1")
    first_batch(cloud, nodes, group, new_nodes=True)
    before = refresh(group, "r-1", ended, start=datetime.now(timezone.utc) - timedelta(minutes=30))
    describe(stub, group, before)
    stub.add_response("start_instance_refresh", {"InstanceRefreshId": "r-2"},
                      {"AutoScalingGroupName": group, "Strategy": "Rolling", "Preferences": API_PREFS})
    describe(stub, group, before, refresh(group, "r-2", "Pending"))
    cancel(stub, group, "r-2")
    code, line = gate(capsys, cloud, nodes, group)
    assert code == 1 and f"started refresh r-2 after refresh r-1 {ended}" in line
    assert line.endswith("refresh r-2 Pending 33% cancelled")


@pytest.mark.parametrize("how", ["started before v2 existed", "DesiredConfiguration v1"])
def test_a_refresh_for_an_older_template_is_cancelled_then_replaced(cloud, nodes, capsys, stub, how):
    group = cloud.group("1")
    first_batch(cloud, nodes, group, new_nodes=True)
    stale = refresh(group, "r-1", "InProgress", start=datetime(2020, 1, 1, tzinfo=timezone.utc)) \
        if how.startswith("started") else refresh(group, "r-1", "InProgress", desired_version="1")
    describe(stub, group, stale)                                   # look 1: cancel it
    cancel(stub, group, "r-1")
    describe(stub, group, dict(stale, Status="Cancelling"))        # look 2: wait for the cancel
    describe(stub, group, dict(stale, Status="Cancelled"))         # look 3: start one for v2
    stub.add_response("start_instance_refresh", {"InstanceRefreshId": "r-2"},
                      {"AutoScalingGroupName": group, "Strategy": "Rolling", "Preferences": API_PREFS})
    describe(stub, group, refresh(group, "r-2", "InProgress"), dict(stale, Status="Cancelled"))  # look 4: watched
    describe(stub, group, refresh(group, "r-2", "Failed", reason="boom"))                          # look 5: final
    describe(stub, group, refresh(group, "r-2", "Failed", reason="boom"))                          # nothing to cancel
    code, err = gate_all(capsys, cloud, nodes, group, "--timeout", "120", "--interval", "0")
    assert code == 1
    looks = [line for line in err.splitlines() if "] attempt " in line]
    assert len(looks) == 5
    assert "refresh r-1 InProgress 33% was started for an older launch template version: cancelled" in looks[0]
    assert "refresh r-1 Cancelling 33%: waiting for the cancel" in looks[1]
    assert "started refresh r-2 after refresh r-1 Cancelled" in looks[2]
    assert "refresh r-2 Failed 33% (boom): the rollout stopped" in err.splitlines()[-1]


def gate_all(capsys, cloud, nodes, group: str, *extra: str) -> tuple[int, str]:
    from tests.helpers.kube_api import kubectl_binary
    argv = ["rollout", "--asg", group, "--region", REGION, "--endpoint-url", cloud.url, "--kubelet-version", NEW_K8S,
            "--launch-template-version", "2", "--image-id", cloud.new_ami, "--manage-refresh", *PREFS, *extra,
            "--kubectl", kubectl_binary(28), "--kubeconfig", str(nodes.api.kubeconfig)]
    code = cli.main(argv)
    return code, capsys.readouterr().err


def test_a_rolled_group_passes_without_touching_the_refresh(cloud, nodes, capsys, stub):
    group = cloud.group("1")
    old = cloud.instances(group)
    cloud.roll(group)
    new = cloud.instances(group)
    nodes.set([nodes.node(i, OLD_K8S, ready=False) for i in old] + [nodes.node(i, NEW_K8S) for i in new])
    code, line = gate(capsys, cloud, nodes, group)
    assert code == 0, line  # no refresh call at all: the stub has no responses and would fail on one
