"""Config validation: every problem at once, each naming key, value and fix."""
from __future__ import annotations

import copy
import json

import pytest

from kubehop import config
from kubehop.plan.stages import read_stack_file
from tests.plan_helpers import prod_b


def load(data: dict) -> config.StackConfig:
    sf = read_stack_file(data)
    return config.load(sf.raw, set(sf.secret_keys))


def problems(mutate) -> list[config.ConfigProblem]:
    data = copy.deepcopy(prod_b())
    mutate(data["config"])
    with pytest.raises(config.ConfigErrors) as info:
        load(data)
    return info.value.problems


def test_prod_b_is_valid():
    cfg = load(prod_b())
    assert cfg.cluster.name == "aws-uswest2-prod-b" and cfg.cluster.production
    assert [n.name for n in cfg.control_plane.nodes] == ["master0", "master1", "master2"]
    assert cfg.cluster.dedicated_namespaces == ["apsoutheastprod", "automation", "qaautotest", "useastprod"]
    assert cfg.secrets_present >= {"sshPrivateKey", "kubeconfig"}


CASES = [
    ("nodes[1].host", lambda c: c["kubehop:controlPlane"]["nodes"][1].update(host="bad host"), "kubehop:controlPlane.nodes[1].host", "bad host"),
    ("node name", lambda c: c["kubehop:controlPlane"]["nodes"][0].update(name="Master_0"), "kubehop:controlPlane.nodes[0].name", "Master_0"),
    ("even masters", lambda c: c["kubehop:controlPlane"]["nodes"].pop(), "kubehop:controlPlane", None),
    ("dup masters", lambda c: c["kubehop:controlPlane"]["nodes"][2].update(name="master0"), "kubehop:controlPlane", None),
    ("region", lambda c: c["kubehop:cluster"].update(region="uswest2"), "kubehop:cluster.region", "uswest2"),
    ("version", lambda c: c.update({"kubehop:kubernetesVersion": "1.99"}), "kubehop:kubernetesVersion", "1.99"),
    ("policy", lambda c: c.update({"kubehop:workerPolicy": "fast"}), "kubehop:workerPolicy", "fast"),
    ("unknown addon", lambda c: c["kubehop:addons"].update({"traefik": {}}), "kubehop:addons.traefik", None),
    ("bad pin", lambda c: c["kubehop:addons"].update({"cluster-autoscaler": {"chartVersion": "9.20.0"}}), "kubehop:addons.cluster-autoscaler.chartVersion", "9.20.0"),
    ("bad image pin", lambda c: c["kubehop:addons"].update({"aws-cloud-controller-manager": {"imageTag": "v1.28.1"}}), "kubehop:addons.aws-cloud-controller-manager.imageTag", "v1.28.1"),
    ("plain secret", lambda c: c.update({"kubehop:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----"}), "kubehop:sshPrivateKey", None),
    ("missing key", lambda c: c.pop("kubehop:sshPrivateKey"), "kubehop:sshPrivateKey", None),
    ("missing cluster", lambda c: c.pop("kubehop:cluster"), "kubehop:cluster", None),
    ("typo", lambda c: c["kubehop:controlPlane"].update({"drainTimeout": 5}), "kubehop:controlPlane.drainTimeout", None),
    ("drain too short", lambda c: c["kubehop:controlPlane"].update({"drainTimeoutSeconds": 1}), "kubehop:controlPlane.drainTimeoutSeconds", None),
    ("s3", lambda c: c["kubehop:controlPlane"]["etcd"].update({"s3Uri": "bucket/x"}), "kubehop:controlPlane.etcd.s3Uri", "bucket/x"),
    ("ami", lambda c: c["kubehop:adopt"]["amis"].update({"worker": "ami-xyz"}), "kubehop:adopt.amis", None),
    ("pool sizes", lambda c: c["kubehop:nodePools"][0].update({"minSize": 9, "maxSize": 3}), "kubehop:nodePools[0]", None),
    ("taint", lambda c: c["kubehop:nodePools"][2]["taints"][0].update({"effect": "Sometimes"}), "kubehop:nodePools[2].taints[0].effect", "Sometimes"),
    ("traffic state", lambda c: c["kubehop:traffic"].update({"state": "paused"}), "kubehop:traffic.state", "paused"),
    ("http without url", lambda c: c["kubehop:traffic"]["control"].pop("url"), "kubehop:traffic.control", None),
    ("no traffic in prod", lambda c: c.pop("kubehop:traffic"), "kubehop:traffic", None),
    ("bad json", lambda c: c.update({"kubehop:verify": "{not json"}), "kubehop:verify", None),
    ("adopt minor", lambda c: c["kubehop:adopt"].update({"kubernetesVersion": "1.26"}), "kubehop:adopt.kubernetesVersion", "1.26"),
    ("kafka needs sibling", lambda c: c.pop("kubehop:sibling"), "kubehop:sibling", None),
    ("canary needs slo", lambda c: c["kubehop:verify"].pop("slo"), "kubehop:verify.slo", None),
    ("adopted template", lambda c: c["kubehop:adopt"]["launchTemplates"].pop("spark"), "kubehop:adopt.launchTemplates.spark", None),
    ("template version", lambda c: c["kubehop:adopt"]["launchTemplates"]["workers"].update({"version": "$Latest"}), "kubehop:adopt.launchTemplates.workers.version", "$Latest"),
    ("command without status", lambda c: c["kubehop:traffic"].update({"control": {"kind": "command", "command": "dapp set {cluster} {state} {share}"}}), "kubehop:traffic.control", None),
    ("workload", lambda c: c["kubehop:kafka"]["mirrorMaker"].update({"workload": "mirrormaker"}), "kubehop:kafka.mirrorMaker.workload", "mirrormaker"),
]


@pytest.mark.parametrize("label, mutate, key, value", CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_key_value_and_fix(label, mutate, key, value):
    found = problems(mutate)
    matching = [p for p in found if p.key == key or p.key.startswith(key)]
    assert matching, f"no problem for {key}: {[str(p) for p in found]}"
    text = str(matching[0])
    assert "Fix:" in text and matching[0].fix
    if value is not None:
        assert value in text


def test_every_problem_is_reported_at_once():
    def mutate(c):
        c["kubehop:controlPlane"]["nodes"][1]["host"] = "bad host"
        c["kubehop:cluster"]["region"] = "nowhere"
        c["kubehop:workerPolicy"] = "fast"
    keys = {p.key for p in problems(mutate)}
    assert {"kubehop:controlPlane.nodes[1].host", "kubehop:cluster.region", "kubehop:workerPolicy"} <= keys


def test_plain_text_secret_value_is_never_echoed():
    secret = "-----BEGIN OPENSSH PRIVATE KEY----- abc"
    found = problems(lambda c: c.update({"kubehop:sshPrivateKey": secret}))
    assert all(secret not in str(p) for p in found)


def test_minor_resolves_to_catalog_patch():
    data = prod_b()
    data["config"]["kubehop:kubernetesVersion"] = "1.26"
    assert load(data).kubernetes_version == "1.26.15"


def test_objects_arrive_as_json_text_like_pulumi_gives_them():
    sf = read_stack_file(prod_b())
    assert json.loads(sf.raw["kubehop:controlPlane"])["nodes"][0]["name"] == "master0"
    assert sf.raw["kubehop:sshPrivateKey"] != "" and "kubehop:sshPrivateKey" in sf.secret_keys
