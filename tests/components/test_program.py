"""The real Pulumi program under the recording mock engine."""
from __future__ import annotations

import json

import pytest

from kubehop.plan import engine
from kubehop.plan.stages import diff_stage, read_stack_file, set_path
from tests.plan_helpers import prod_b


def run(data: dict, outputs: dict | None = None, versions: dict | None = None) -> engine.Run:
    sf = read_stack_file(data)
    return engine.run_program(sf.raw, sf.secret_keys, stack="prod-b", stack_outputs=outputs or {},
                              template_versions={} if versions is None else versions)


@pytest.fixture(scope="module")
def baseline() -> engine.Run:
    return run(prod_b())


def test_components_parent_their_children(baseline):
    by_urn = baseline.resources
    types = {r.type for r in by_urn.values()}
    assert {"kubehop:index:ControlPlane", "kubehop:index:Addons", "kubehop:index:NodePool",
            "kubehop:index:Verification", "kubehop:index:Drainer"} <= types
    for r in by_urn.values():
        if r.type.startswith(("command:", "aws:", "kubernetes:helm")):
            parent = by_urn.get(r.parent)
            assert parent is not None and parent.type.startswith("kubehop:index:"), r.name


def test_adopted_infrastructure_is_retained_and_imported(baseline):
    groups = [r for r in baseline.resources.values() if r.type == "aws:autoscaling/group:Group"]
    assert {g.import_id for g in groups} == {"aws-uswest2-prod-b-workers", "aws-uswest2-prod-b-db", "aws-uswest2-prod-b-spark"}
    assert all(g.retain_on_delete and "desiredCapacity" in g.ignore_changes for g in groups)
    templates = [r for r in baseline.resources.values() if r.type == "aws:ec2/launchTemplate:LaunchTemplate"]
    assert len(templates) == 3 and all(t.retain_on_delete for t in templates)
    releases = [r for r in baseline.resources.values() if r.type == "kubernetes:helm.sh/v3:Release" and r.import_id]
    assert {r.import_id for r in releases} >= {"kube-system/cluster-autoscaler", "ingress-nginx/ingress-nginx"}
    assert all(r.retain_on_delete for r in releases)
    # steps never undo anything on destroy: no delete command anywhere
    commands = [r for r in baseline.resources.values() if r.type.startswith("command:")]
    assert commands and all("delete" not in r.inputs for r in commands)


def test_ssh_key_and_tokens_stay_secret_in_recorded_inputs(baseline):
    text = json.dumps([r.inputs for r in baseline.resources.values()])
    assert engine.OFFLINE_SECRET not in text
    remote = [r for r in baseline.resources.values() if r.type == "command:remote:Command"]
    # the connection (host, user, key, bastion) is secret as a whole because it holds the key
    assert remote and all(r.inputs["connection"].startswith("[secret:sshPrivateKey@") for r in remote)
    assert all(r.inputs["stdin"].startswith("#!/usr/bin/env bash") for r in remote)


def test_invalid_config_registers_nothing():
    data = prod_b()
    data["config"]["kubehop:controlPlane"]["nodes"][0]["host"] = "bad host"
    with pytest.raises(Exception) as info:
        run(data)
    assert "kubehop:controlPlane.nodes[0].host" in str(info.value)
    assert info.value.kubehop_run.resources == {}


def test_a_skip_registers_nothing(baseline):
    data = prod_b()
    data["config"]["kubehop:kubernetesVersion"] = "1.28"
    data["config"]["kubehop:traffic"]["state"] = "maintaining"
    with pytest.raises(Exception) as info:
        run(data, outputs={"organization/kubehop/prod-b": baseline.outputs})
    assert "skips minors" in str(info.value)
    assert info.value.kubehop_run.resources == {}


def test_a_rerun_after_a_finished_hop_changes_nothing(baseline):
    versions: dict = {}
    first = run(prod_b(), versions=versions)
    data = prod_b()
    data["config"]["kubehop:traffic"]["state"] = "maintaining"
    maintaining = run(data, {"organization/kubehop/prod-b": first.outputs}, versions)
    data["config"]["kubehop:kubernetesVersion"] = "1.27"
    hop = run(data, {"organization/kubehop/prod-b": maintaining.outputs}, versions)
    assert hop.outputs["kubehop"]["controlPlaneVersion"] == "1.27.16"
    assert diff_stage(maintaining, hop, set())  # the hop changes things...
    again = run(data, {"organization/kubehop/prod-b": hop.outputs}, versions)
    assert diff_stage(hop, again, set()) == []  # ...and its re-run changes nothing


def test_set_path_edits_nested_config():
    raw = {"kubehop:traffic": json.dumps({"state": "serving", "control": {"kind": "http"}})}
    set_path(raw, "kubehop:traffic.state", "maintaining")
    assert json.loads(raw["kubehop:traffic"]) == {"state": "maintaining", "control": {"kind": "http"}}


def _urn(run_: engine.Run, name: str) -> str:
    return next(u for u, r in run_.resources.items() if r.name == name)


def test_control_plane_waits_for_the_maintaining_cutover(baseline):
    from kubehop.plan.stages import _closure, _expand

    data = prod_b()
    data["config"]["kubehop:traffic"]["state"] = "maintaining"
    maintaining = run(data, {"organization/kubehop/prod-b": baseline.outputs})
    closure = _closure(_expand(maintaining))
    snapshot = _urn(maintaining, "master0-etcd-snapshot")
    assert _urn(maintaining, "aws-uswest2-prod-b-kafka-lag-gate") in closure[snapshot]
    assert _urn(maintaining, "dcluster-mysql-mysql-switch") in closure[snapshot]


def test_remote_steps_get_every_variable_their_script_requires(baseline):
    import re
    import shlex

    from components.steps import CONTROL_PLANE_LIB, SCRIPTS_DIR, script

    required = re.compile(r'\|\| bad "(KUBEHOP_[A-Z_]+) is required')
    # lib.sh's functions (name -> definition): a step also requires what the ones it calls require.
    lib = {m.group(1): m.group(0) for m in re.finditer(r"(?ms)^([a-z_]+)\(\) \{(?:[^\n]*\}$|.*?^\}$)",
                                                       CONTROL_PLANE_LIB.read_text())}

    def with_lib_used(text: str) -> str:
        used, todo = set(), [text]
        while todo:
            for name in set(re.findall(r"\b[a-z_]+\b", todo.pop())) & lib.keys() - used:
                used.add(name)
                todo.append(lib[name])
        return "\n".join([text, *(lib[name] for name in used)])

    steps = [p for p in SCRIPTS_DIR.glob("control_plane/*.sh") if p != CONTROL_PLANE_LIB]
    remote = [r for r in baseline.resources.values() if r.type == "command:remote:Command"]
    # node preflight on each master, snapshot, master0 chain, two other masters, join token,
    # its renewal timer and margin check
    assert len(remote) == 3 + 1 + 7 + 6 * 2 + 3
    for r in remote:
        words = shlex.split(r.inputs["create"])
        assert words[:2] == ["sudo", "env"] and words[-2:] == ["bash", "-s"]
        env = dict(w.split("=", 1) for w in words[2:-2])
        step = next(p for p in steps if script(p.relative_to(SCRIPTS_DIR).as_posix()) == r.inputs["stdin"])
        missing = set(required.findall(with_lib_used(step.read_text()))) - set(env)
        assert not missing, f"{r.name} runs {step.name} without {missing}"


def _maintaining(baseline: engine.Run, data: dict) -> engine.Run:
    data["config"]["kubehop:traffic"]["state"] = "maintaining"
    return run(data, {"organization/kubehop/prod-b": baseline.outputs})


def test_serving_without_kafka_while_mirrormaker_is_stopped_is_refused(baseline):
    maintaining = _maintaining(baseline, prod_b())
    assert maintaining.outputs["kubehop"]["mirrorMaker"] == "stopped"
    data = prod_b()
    data["config"].pop("kubehop:kafka")
    data["config"].pop("kubehop:siblingKubeconfig")
    with pytest.raises(Exception) as info:
        run(data, {"organization/kubehop/prod-b": maintaining.outputs})
    assert "kubehop:kafka" in str(info.value) and "MirrorMaker" in str(info.value)
    assert info.value.kubehop_run.resources == {}


def test_a_pinned_ami_skips_the_build_and_is_rolled(baseline):
    data = prod_b()
    data["config"]["kubehop:workerPolicy"] = "each-hop"
    data["config"]["kubehop:nodeImages"]["pinned"] = {"worker": "ami-0fedcba9876543210"}
    maintaining = _maintaining(baseline, data)
    data["config"]["kubehop:kubernetesVersion"] = "1.27"
    hop = run(data, {"organization/kubehop/prod-b": maintaining.outputs})
    names = {r.name for r in hop.resources.values()}
    assert "worker-image-build" not in names and "spark-image-build" in names
    build = next(r for r in hop.resources.values() if r.name == "spark-image-build")
    assert hop.resources[build.parent].type == "kubehop:index:NodeImage"
    templates = {r.name: r.inputs for r in hop.resources.values() if r.type == "aws:ec2/launchTemplate:LaunchTemplate"}
    assert templates["workers-launch-template"]["imageId"] == "ami-0fedcba9876543210"
    assert templates["spark-launch-template"]["imageId"].startswith("ami-")
    assert templates["spark-launch-template"]["imageId"] != "ami-0fedcba9876543210"


def test_the_worker_image_gets_the_pause_image_of_its_minor(baseline):
    from kubehop import catalog
    data = prod_b()
    data["config"]["kubehop:workerPolicy"] = "each-hop"
    maintaining = _maintaining(baseline, data)
    data["config"]["kubehop:kubernetesVersion"] = "1.27"
    hop = run(data, {"organization/kubehop/prod-b": maintaining.outputs})
    build = next(r for r in hop.resources.values() if r.name == "worker-image-build")
    variables = json.loads(build.inputs["environment"]["KUBEHOP_PACKER_VARS"])
    assert variables["pause_image"] == catalog.release("1.27").pause_image == "registry.k8s.io/pause:3.9"


def test_pool_labels_and_taints_reach_the_join(baseline):
    import base64

    def encoded(text: str) -> str:  # user_data.sh gets every value base64-encoded
        return base64.b64encode(text.encode()).decode()

    templates = {r.name: r.inputs for r in baseline.resources.values() if r.type == "aws:ec2/launchTemplate:LaunchTemplate"}
    spark = base64.b64decode(templates["spark-launch-template"]["userData"]).decode()
    assert f"decode NODE_TAINTS '{encoded('dv.io/spark=true:NoSchedule')}'" in spark
    assert f"decode NODE_LABELS '{encoded('dv.io/node-type=spark,kubehop.io/pool=spark,spark-long-living=v1')}'" in spark
    assert f"decode CLUSTER '{encoded('aws-uswest2-prod-b')}'" in spark
    workers = base64.b64decode(templates["workers-launch-template"]["userData"]).decode()
    assert "decode NODE_TAINTS ''" in workers


def test_adoption_neither_builds_nor_rolls_images(baseline):
    assert not [r for r in baseline.resources.values() if r.name.endswith("-image-build")]
    templates = {r.name: r.inputs["imageId"] for r in baseline.resources.values()
                 if r.type == "aws:ec2/launchTemplate:LaunchTemplate"}
    adopted = prod_b()["config"]["kubehop:adopt"]["amis"]
    assert templates == {"workers-launch-template": adopted["worker"], "databases-launch-template": adopted["worker"],
                         "spark-launch-template": adopted["spark"]}
    assert baseline.outputs["kubehop"]["imageVersion"] is None


def test_pools_follow_the_cluster_imds_unless_they_say_otherwise():
    data = prod_b()
    data["config"]["kubehop:cluster"]["imds"] = "v1"
    data["config"]["kubehop:nodePools"][2]["imdsv2Required"] = True
    tokens = {r.name: r.inputs["metadataOptions"]["httpTokens"] for r in run(data).resources.values()
              if r.type == "aws:ec2/launchTemplate:LaunchTemplate"}
    assert tokens == {"workers-launch-template": "optional", "databases-launch-template": "optional",
                      "spark-launch-template": "required"}


def test_deployed_state_waits_for_the_last_steps(baseline):
    """A failed `pulumi up` must not record the hop as done: the exported state
    resolves only once verification (and image builds, and the serving cutover) finished."""
    waits = {baseline.resources[u].name for u in baseline.output_dependencies["kubehop"]}
    assert {"nodes-verify", "pods-verify", "endpoints-verify", "network-verify", "ingress-urls-verify"} <= waits
    maintaining = _maintaining(baseline, prod_b())
    data = prod_b()
    data["config"]["kubehop:traffic"]["state"] = "maintaining"
    data["config"]["kubehop:targetVersion"] = "1.29"
    prepared = run(data, {"organization/kubehop/prod-b": maintaining.outputs})
    assert {"worker-image-build", "spark-image-build"} <= {prepared.resources[u].name for u in prepared.output_dependencies["kubehop"]}
    data["config"]["kubehop:traffic"]["state"] = "serving"
    serving = run(data, {"organization/kubehop/prod-b": prepared.outputs})
    assert "aws-uswest2-prod-b-canary" in {serving.resources[u].name for u in serving.output_dependencies["kubehop"]}


def test_adopted_groups_keep_their_launch_template_until_they_roll(baseline):
    groups = {r.name: r.inputs for r in baseline.resources.values() if r.type == "aws:autoscaling/group:Group"}
    assert groups["workers-node-pool"]["launchTemplate"] == {"id": "lt-0a1b2c3d4e5f60718", "version": "12"}
    assert all("tags" not in g for g in groups.values()), "the groups' own tags are left alone"
    wait = next(r for r in baseline.resources.values() if r.name == "workers-rollout-wait").inputs["create"]
    assert "--launch-template-version 12" in wait and "--image-id ami-0a1b2c3d4e5f60718" in wait


def test_drain_plumbing(baseline):
    by_name = {r.name: r for r in baseline.resources.values()}
    rule = json.loads(by_name["node-termination-asg-termination"].inputs["eventPattern"])
    assert rule["detail"]["AutoScalingGroupName"] == sorted(
        ["aws-uswest2-prod-b-workers", "aws-uswest2-prod-b-db", "aws-uswest2-prod-b-spark"])
    nth = by_name["aws-node-termination-handler-addon"].inputs
    assert nth["values"]["enableSqsTerminationDraining"] is True and nth["values"]["queueURL"].startswith("https://")
    # the current chart from its OCI registry, not the frozen eks-charts 0.21.0
    assert nth["chart"] == "oci://public.ecr.aws/aws-ec2/helm/aws-node-termination-handler" and nth["version"] == "0.27.6"
    assert "repositoryOpts" not in nth
    hook = by_name["workers-drain-hook"]
    assert hook.inputs["lifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert hook.inputs["heartbeatTimeout"] > 900 and hook.inputs["defaultResult"] == "CONTINUE"
    assert by_name["aws-node-termination-handler-addon"].urn in hook.dependencies, "no hook before the drainer runs"
    tags = by_name["workers-launch-template"].inputs["tagSpecifications"]
    for pool in ("workers", "databases", "spark"):  # "/" in tag keys: launches fail with IMDS tags on
        assert by_name[f"{pool}-launch-template"].inputs["metadataOptions"]["instanceMetadataTags"] == "disabled"
    assert {t["resourceType"] for t in tags} == {"instance", "volume"}
    assert all(t["tags"]["kubernetes.io/cluster/aws-uswest2-prod-b"] == "owned" for t in tags)
    db_wait = by_name["databases-rollout-wait"].inputs["create"]
    assert "--timeout 3600" in db_wait and "--timeout 3600" in by_name["workers-rollout-wait"].inputs["create"]


def test_adoption_checks_the_cluster_runs_the_adopt_versions(baseline):
    names = {r.name: r for r in baseline.resources.values()}
    check = names["adopted-versions-preflight"].inputs["create"]
    assert "run_gate.sh nodes --control-plane-version v1.26.15 --worker-version v1.26.15" in check
    # nothing on the masters runs before it: the first steps there (each master's node preflight) wait for it
    for master in ("master0", "master1", "master2"):
        assert names["adopted-versions-preflight"].urn in names[f"{master}-node-preflight"].dependencies
        assert names[f"{master}-node-preflight"].urn in names["master0-etcd-snapshot"].dependencies
        assert names[f"{master}-node-preflight"].urn in names[f"{master}-package-repo"].dependencies


def test_ssh_host_keys_are_pinned_when_configured():
    import pulumi

    from components.steps import SshTarget
    from kubehop.config import load

    data = prod_b()
    data["config"]["kubehop:controlPlane"]["nodes"][0]["hostKey"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMaster0"
    data["config"]["kubehop:ssh"]["bastion"]["hostKey"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBastion"
    sf = read_stack_file(data)
    targets = SshTarget.for_masters(load(sf.raw, set(sf.secret_keys)), "key")
    conn = targets["master0"].connection()
    assert pulumi.get(conn, "host_key").endswith("Master0")
    assert pulumi.get(pulumi.get(conn, "proxy"), "host_key").endswith("Bastion")
    assert pulumi.get(targets["master1"].connection(), "host_key") is None
