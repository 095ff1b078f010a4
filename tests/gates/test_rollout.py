"""`rollout` gate against a real moto server on 127.0.0.1 and the real kubectl talking to a
loopback API server (tests/helpers/kube_api.py) that serves the nodes.

moto has no instance refresh, so a rollout is played by hand: point the group at
launch template version 2, then terminate each old instance without
decrementing desired capacity so the group launches a replacement.
"""
from __future__ import annotations

import copy
import json
import socket
import uuid
from pathlib import Path

import boto3
import pytest

from kubehop.gates import cli
from tests.helpers import moto_server as moto
from tests.helpers.kube_api import KUBECTL_MINORS, ApiError, kubectl_binary

pytestmark = pytest.mark.skipif(not KUBECTL_MINORS, reason="no kubectl.1.NN (scripts/install-test-deps.sh says how)")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubectl"
REGION = moto.REGION
OLD_K8S, NEW_K8S = "v1.26.15", "v1.27.16"
ONE_LOOK = ["--timeout", "0", "--interval", "0"]

AWS_ENV = moto.AWS_ENV  # the environment every AWS client of these tests runs with


class Cloud:
    """moto server, one VPC/subnet, an old and a new worker AMI, a launch template v1 (old) / v2 (new)."""

    def __init__(self, url: str):
        self.url = url
        self.ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=url)
        self.autoscaling = boto3.client("autoscaling", region_name=REGION, endpoint_url=url)
        vpc = self.ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        self.subnet = self.ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24", AvailabilityZone=f"{REGION}a")[
            "Subnet"]["SubnetId"]
        self.old_ami = self._ami("kubehop-worker-1.26.15-20261101")
        self.new_ami = self._ami("kubehop-worker-1.27.16-20261120")
        lt = self.ec2.create_launch_template(
            LaunchTemplateName="prod-b-workers",
            LaunchTemplateData={"ImageId": self.old_ami, "InstanceType": "m5.2xlarge"},
        )["LaunchTemplate"]
        self.lt_id = lt["LaunchTemplateId"]
        version = self.ec2.create_launch_template_version(
            LaunchTemplateId=self.lt_id, SourceVersion="1",
            LaunchTemplateData={"ImageId": self.new_ami, "InstanceType": "m5.2xlarge"},
        )["LaunchTemplateVersion"]["VersionNumber"]
        assert version == 2

    def _ami(self, name: str) -> str:
        return self.ec2.register_image(
            Name=name, Architecture="x86_64", RootDeviceName="/dev/sda1", VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 100, "VolumeType": "gp3"}}],
        )["ImageId"]

    def group(self, version: str = "1", size: int = 3) -> str:
        name = f"workers-{uuid.uuid4().hex[:8]}"
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=size, MaxSize=size * 2, DesiredCapacity=size,
            LaunchTemplate={"LaunchTemplateId": self.lt_id, "Version": version}, VPCZoneIdentifier=self.subnet,
        )
        return name

    def instances(self, group: str) -> list[dict]:
        """InService instances of the group, each with its EC2 ImageId/PrivateDnsName/AZ merged in."""
        g = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
        ids = [i["InstanceId"] for i in g["Instances"] if i["LifecycleState"] == "InService"]
        ec2 = {i["InstanceId"]: i for r in self.ec2.describe_instances(InstanceIds=ids)["Reservations"]
               for i in r["Instances"]}
        return [dict(i, **ec2[i["InstanceId"]]) for i in g["Instances"] if i["InstanceId"] in ec2]

    def roll(self, group: str) -> None:
        """What an instance refresh would do: new template version, then replace every instance."""
        self.autoscaling.update_auto_scaling_group(
            AutoScalingGroupName=group, LaunchTemplate={"LaunchTemplateId": self.lt_id, "Version": "2"})
        for inst in self.instances(group):
            self.autoscaling.terminate_instance_in_auto_scaling_group(
                InstanceId=inst["InstanceId"], ShouldDecrementDesiredCapacity=False)


@pytest.fixture(scope="module")
def cloud():
    with moto.moto_server() as url:
        yield Cloud(url)


class Nodes:
    """The cluster's nodes on a loopback API server, built from the worker node in nodes_healthy.json."""

    def __init__(self, api):
        self.api = api
        healthy = json.loads((FIXTURES / "nodes_healthy.json").read_text())
        self.control_plane = [n for n in healthy["items"] if "node-role.kubernetes.io/control-plane" in n["metadata"]["labels"]]
        self.template = next(n for n in healthy["items"] if n not in self.control_plane)
        self.notready = next(n for n in json.loads((FIXTURES / "nodes_notready.json").read_text())["items"]
                             if n["metadata"]["name"] == "ip-10-20-2-22.us-west-2.compute.internal")

    def node(self, inst: dict, version: str, *, ready: bool = True, provider_id: bool = True) -> dict:
        node = copy.deepcopy(self.template if ready else self.notready)
        name = inst["PrivateDnsName"]
        az = inst["Placement"]["AvailabilityZone"]
        node["metadata"]["name"] = name
        node["metadata"]["uid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
        for key in ("kubernetes.io/hostname",):
            node["metadata"]["labels"][key] = name
        node["metadata"]["labels"]["topology.kubernetes.io/zone"] = az
        if provider_id:
            node["spec"]["providerID"] = f"aws:///{az}/{inst['InstanceId']}"
        else:
            del node["spec"]["providerID"]
        node["status"]["addresses"] = [{"address": inst["PrivateIpAddress"], "type": "InternalIP"},
                                       {"address": name, "type": "InternalDNS"}, {"address": name, "type": "Hostname"}]
        node["status"]["nodeInfo"]["kubeletVersion"] = node["status"]["nodeInfo"]["kubeProxyVersion"] = version
        return node

    def set(self, nodes: list[dict]) -> None:
        self.api.clear("Node")
        self.api.load(*self.control_plane, *nodes)


@pytest.fixture
def nodes(kube_api):
    return Nodes(kube_api("prod-b", minor=27))


def rollout(capsys, cloud: Cloud, nodes: Nodes, group: str, *extra: str) -> tuple[int, str]:
    """The gate through its CLI; kubectl 1.28 (the newest a 1.27 server supports) asks the nodes' server."""
    argv = ["rollout", "--asg", group, "--region", REGION, "--endpoint-url", cloud.url,
            "--kubelet-version", NEW_K8S, *extra, *ONE_LOOK]
    argv += ["--kubectl", kubectl_binary(28), "--kubeconfig", str(nodes.api.kubeconfig)]
    code = cli.main(argv)
    return code, capsys.readouterr().err.strip().splitlines()[-1]


def test_fails_naming_old_instances_then_passes_after_roll(cloud, nodes, capsys):
    group = cloud.group("1")
    old = cloud.instances(group)
    assert len(old) == 3
    nodes.set([nodes.node(i, OLD_K8S) for i in old])
    want = ["--launch-template-version", "2", "--image-id", cloud.new_ami]

    code, line = rollout(capsys, cloud, nodes, group, *want)
    assert code == 1
    assert f"group {group} launches prod-b-workers version 1 (1), want 2" in line
    assert "3/3 instances not rolled" in line
    for inst in old:
        assert (f"{inst['InstanceId']} [LT v1, {cloud.old_ami}, node {inst['PrivateDnsName']} Ready kubelet {OLD_K8S}]: "
                f"not on either launch template v2 or image {cloud.new_ami}, kubelet {OLD_K8S}, want {NEW_K8S}") in line

    cloud.roll(group)
    new = cloud.instances(group)
    assert {i["InstanceId"] for i in new}.isdisjoint(i["InstanceId"] for i in old) and len(new) == 3
    assert {i["ImageId"] for i in new} == {cloud.new_ami}
    # The moto quirk the gate must live with: instances report the template's default
    # version (1), not the version they were launched from, so the image has to decide.
    reported = {i["LaunchTemplate"]["Version"] for i in new}
    # Old nodes linger NotReady until the CCM deletes them; they belong to no InService instance.
    nodes.set([nodes.node(i, OLD_K8S, ready=False) for i in old] + [nodes.node(i, NEW_K8S) for i in new])
    code, line = rollout(capsys, cloud, nodes, group, *want)
    assert code == 0, (line, reported)
    assert f"group {group}: 3/3 InService on the new launch template/image, nodes Ready at {NEW_K8S}" in line

    # judged by image alone it passes too; by launch template version alone only if moto reports v2
    assert rollout(capsys, cloud, nodes, group, "--image-id", cloud.new_ami)[0] == 0
    assert rollout(capsys, cloud, nodes, group, "--launch-template-version", "2")[0] == (0 if reported == {"2"} else 1)


def test_launch_template_version_alone_and_default_version(cloud, nodes, capsys):
    """moto reports each instance's template version as the template's default version, so a
    template whose default is v2 lets the launch template version alone decide."""
    lt = cloud.ec2.create_launch_template(
        LaunchTemplateName=f"spark-{uuid.uuid4().hex[:6]}",
        LaunchTemplateData={"ImageId": cloud.old_ami, "InstanceType": "r5.4xlarge"})["LaunchTemplate"]["LaunchTemplateId"]
    cloud.ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1",
                                             LaunchTemplateData={"ImageId": cloud.new_ami})
    cloud.ec2.modify_launch_template(LaunchTemplateId=lt, DefaultVersion="2")
    group = f"spark-{uuid.uuid4().hex[:8]}"
    cloud.autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=group, MinSize=2, MaxSize=4, DesiredCapacity=2,
        LaunchTemplate={"LaunchTemplateId": lt, "Version": "$Default"}, VPCZoneIdentifier=cloud.subnet)
    insts = cloud.instances(group)
    assert {i["LaunchTemplate"]["Version"] for i in insts} == {"2"}
    nodes.set([nodes.node(i, NEW_K8S) for i in insts])
    code, line = rollout(capsys, cloud, nodes, group, "--launch-template-version", "2")
    assert code == 0, line
    code, line = rollout(capsys, cloud, nodes, group, "--launch-template-version", "3")
    assert code == 1 and "version 2 ($Default), want 3" in line and "2/2 instances not rolled" in line


def test_latest_resolves_to_version_number(cloud, nodes, capsys):
    group = cloud.group("$Latest", size=2)
    nodes.set([nodes.node(i, NEW_K8S) for i in cloud.instances(group)])
    assert rollout(capsys, cloud, nodes, group, "--launch-template-version", "2", "--image-id", cloud.new_ami)[0] == 0
    code, line = rollout(capsys, cloud, nodes, group, "--image-id", cloud.old_ami)
    assert code == 1 and f"prod-b-workers version 2 uses image {cloud.new_ami}, want {cloud.old_ami}" in line


def test_node_not_ready_named(cloud, nodes, capsys):
    group = cloud.group("2")
    insts = cloud.instances(group)
    sick = insts[1]
    nodes.set([nodes.node(i, NEW_K8S, ready=i is not sick) for i in insts])
    code, line = rollout(capsys, cloud, nodes, group, "--launch-template-version", "2", "--image-id", cloud.new_ami)
    assert code == 1
    assert "1/3 instances not rolled" in line
    assert (f"{sick['InstanceId']} [LT v{sick['LaunchTemplate']['Version']}, {cloud.new_ami}, node {sick['PrivateDnsName']} Ready=Unknown "
            f"(NodeStatusUnknown) kubelet {NEW_K8S}]: node Ready=Unknown (NodeStatusUnknown)") in line
    assert insts[0]["InstanceId"] not in line


def test_instance_without_node_and_dns_fallback(cloud, nodes, capsys):
    group = cloud.group("2")
    insts = cloud.instances(group)
    # matched by private DNS name when the node has no providerID yet
    nodes.set([nodes.node(i, NEW_K8S, provider_id=False) for i in insts])
    code, line = rollout(capsys, cloud, nodes, group, "--image-id", cloud.new_ami)
    assert code == 0, line
    nodes.set([nodes.node(i, NEW_K8S) for i in insts[:2]])
    code, line = rollout(capsys, cloud, nodes, group, "--image-id", cloud.new_ami)
    assert code == 1
    lt = insts[2]["LaunchTemplate"]["Version"]
    assert f"{insts[2]['InstanceId']} [LT v{lt}, {cloud.new_ami}, node no node]: no Kubernetes node" in line


def test_in_service_below_desired(cloud, nodes, capsys):
    """Mid-refresh a replacement is still Pending. moto launches every instance straight into
    InService (and tops a group up on Standby), so the test sets the state in moto's backend -
    the server runs in this process - and the gate still reads it through the API."""
    from moto.autoscaling.models import autoscaling_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    group = cloud.group("2")
    insts = cloud.instances(group)
    nodes.set([nodes.node(i, NEW_K8S) for i in insts])
    assert rollout(capsys, cloud, nodes, group, "--image-id", cloud.new_ami)[0] == 0
    backend_group = autoscaling_backends[DEFAULT_ACCOUNT_ID][REGION].autoscaling_groups[group]
    pending = next(s for s in backend_group.instance_states if s.instance.id == insts[0]["InstanceId"])
    pending.lifecycle_state = "Pending"
    code, line = rollout(capsys, cloud, nodes, group, "--image-id", cloud.new_ami)
    assert code == 1 and f"2/3 instances InService (others: {insts[0]['InstanceId']} Pending)" in line


def test_instance_terminated_outside_the_group(cloud, nodes, capsys):
    """An instance killed behind the group's back: the group launches a replacement, which
    fails the gate until its node is Ready; a group still listing the dead one fails on EC2 state."""
    group = cloud.group("2", size=2)
    insts = cloud.instances(group)
    nodes.set([nodes.node(i, NEW_K8S) for i in insts])
    cloud.ec2.terminate_instances(InstanceIds=[insts[1]["InstanceId"]])
    now = cloud.instances(group)
    code, line = rollout(capsys, cloud, nodes, group, "--image-id", cloud.new_ami)
    assert code == 1
    if insts[1]["InstanceId"] in {i["InstanceId"] for i in now}:
        assert f"{insts[1]['InstanceId']} [" in line and "EC2 state terminated" in line
    else:
        (replacement,) = [i for i in now if i["InstanceId"] not in {x["InstanceId"] for x in insts}]
        assert f"{replacement['InstanceId']} [" in line and "no Kubernetes node" in line
        nodes.set([nodes.node(i, NEW_K8S) for i in now])
        code, line = rollout(capsys, cloud, nodes, group, "--image-id", cloud.new_ami)
        assert code == 0, line


def test_unknown_group(cloud, nodes, capsys):
    nodes.set([])
    code, line = rollout(capsys, cloud, nodes, "no-such-group", "--image-id", cloud.new_ami)
    assert code == 1 and f"Auto Scaling group no-such-group not found in {REGION}" in line


def test_kubectl_failure_fails_closed(cloud, nodes, capsys):
    group = cloud.group("2", size=1)
    nodes.api.refusal = ApiError(401, "Unauthorized", "Unauthorized")
    code, line = rollout(capsys, cloud, nodes, group, "--image-id", cloud.new_ami)
    assert code == 1 and "kubectl get nodes exited 1: error: You must be logged in to the server (Unauthorized)" in line
    assert nodes.api.calls("GET", "/api/v1/nodes")


def test_cordoned_node_is_not_rolled(cloud, nodes, capsys):
    """A replacement whose node is still cordoned (drained, or never uncordoned) takes no pods."""
    group = cloud.group("2", size=2)
    insts = cloud.instances(group)
    cordoned = nodes.node(insts[1], NEW_K8S)
    cordoned["spec"]["unschedulable"] = True
    nodes.set([nodes.node(insts[0], NEW_K8S), cordoned])
    code, line = rollout(capsys, cloud, nodes, group, "--image-id", cloud.new_ami)
    assert code == 1 and "1/2 instances not rolled" in line
    assert f"{insts[1]['InstanceId']} [" in line and "node cordoned" in line and insts[0]["InstanceId"] not in line


def test_asg_unhealthy_instance_is_not_rolled(cloud, nodes, capsys):
    """An InService instance the group marked Unhealthy is about to be replaced (SetInstanceHealth,
    Auto Scaling API reference): not a finished rollout even with its node Ready."""
    group = cloud.group("2", size=2)
    insts = cloud.instances(group)
    nodes.set([nodes.node(i, NEW_K8S) for i in insts])
    assert rollout(capsys, cloud, nodes, group, "--image-id", cloud.new_ami)[0] == 0
    cloud.autoscaling.set_instance_health(InstanceId=insts[0]["InstanceId"], HealthStatus="Unhealthy")
    states = {i["InstanceId"]: (i["LifecycleState"], i["HealthStatus"]) for i in cloud.instances(group)}
    assert states[insts[0]["InstanceId"]] == ("InService", "Unhealthy")
    code, line = rollout(capsys, cloud, nodes, group, "--image-id", cloud.new_ami)
    assert code == 1 and f"{insts[0]['InstanceId']} [" in line and "ASG health Unhealthy" in line


def test_endpoint_down_fails_closed(capsys, monkeypatch, tmp_path):
    for key, value in AWS_ENV.items():
        monkeypatch.setenv(key, value)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = cli.main(["rollout", "--asg", "workers", "--region", REGION, "--endpoint-url", f"http://127.0.0.1:{port}",
                     "--image-id", "ami-0123456789abcdef0", "--kubelet-version", NEW_K8S,
                     "--kubectl", str(tmp_path / "unused"), *ONE_LOOK])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1
    assert "gate rollout FAILED" in line and f"127.0.0.1:{port}" in line


def test_needs_template_version_or_image(monkeypatch):
    with pytest.raises(SystemExit) as exc:
        cli.main(["rollout", "--asg", "g", "--region", REGION, "--kubelet-version", NEW_K8S])
    assert exc.value.code == 2
