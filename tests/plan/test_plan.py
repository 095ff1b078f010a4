"""The offline plan: the real program under the mock engine, stage by stage."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kubehop.plan import engine
from kubehop.plan.stages import build, read_stack_file
from tests.plan_helpers import ROOT, ancestors, five_masters, prod_b, release_moves, step, steps_by, write_stack

VERSION_STAGES = ["1.27.16", "1.28.15", "1.29.15"]


def plan_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kubehop", "plan", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def efficient() -> dict:
    result = plan_cli("--stack", "prod-b", "--to", "1.29", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    # no recorded state: the adoption run comes first (tests/components/test_adoption.py); these tests read the journey after it
    assert plan["stages"][0]["name"] == "adopt"
    return {**plan, "stages": plan["stages"][1:], "adopt": plan["stages"][0]}


@pytest.fixture(scope="module")
def each_hop() -> dict:
    plan = build(read_stack_file(prod_b()), stack="prod-b", to="1.29", policy="each-hop")
    return {**plan, "stages": [s for s in plan["stages"] if s["name"] != "adopt"]}


def stage(plan: dict, name: str) -> dict:
    return next(s for s in plan["stages"] if s["name"] == name)


def test_prod_b_to_1_29_has_the_stages_in_order(efficient):
    assert efficient["cluster"] == "aws-uswest2-prod-b"
    assert (efficient["from"], efficient["to"]) == ("1.26.15", "1.29.15")
    names = [s["name"] for s in efficient["stages"]]
    assert names == ["prepare", "maintaining", *VERSION_STAGES, "serving"]
    for name in VERSION_STAGES:
        s = stage(efficient, name)
        assert s["controlPlane"] == name
        assert s["config"]["kubehop:kubernetesVersion"] == name


def test_json_steps_have_the_documented_shape(efficient):
    for s in efficient["stages"]:
        ids = {x["id"] for x in s["steps"]}
        for x in s["steps"]:
            assert set(x) >= {"id", "action", "target", "op", "resourceType", "dependsOn", "inputs", "impact", "risk"}
            assert x["op"] in {"create", "update", "replace", "delete", "import"}
            assert x["risk"] in {"low", "medium", "high"}
            assert set(x["dependsOn"]) <= ids
            assert x["impact"]


@pytest.mark.parametrize("name", VERSION_STAGES)
def test_control_plane_order_in_every_version_stage(efficient, name):
    s = stage(efficient, name)
    apply0 = step(s, "kubeadm-apply", "master0")
    assert step(s, "etcd-snapshot", "master0")["id"] in ancestors(s, apply0["id"])
    node1, node2 = step(s, "kubeadm-node", "master1"), step(s, "kubeadm-node", "master2")
    assert apply0["id"] in ancestors(s, node1["id"])
    assert node1["id"] in ancestors(s, node2["id"])
    masters = ["master0", "master1", "master2"]
    for node in masters:
        drain, kubelet, uncordon = step(s, "drain", node), step(s, "kubelet-upgrade", node), step(s, "uncordon", node)
        assert drain["id"] in ancestors(s, kubelet["id"])
        assert kubelet["id"] in ancestors(s, uncordon["id"])
    # each master finishes before the next one touches a running component (kubeadm upgrade node)
    for before, after in zip(masters, masters[1:], strict=False):
        first_of_next = step(s, "kubeadm-node", after)
        assert step(s, "uncordon", before)["id"] in ancestors(s, first_of_next["id"])
        assert step(s, "kubeadm-install", after)["id"] in ancestors(s, first_of_next["id"])
    # staging packages touches nothing running: every master does it beside the first master's upgrade
    for node in masters:
        staged = ancestors(s, step(s, "kubeadm-install", node)["id"])
        assert step(s, "package-repo", node)["id"] in staged
        assert not {x["id"] for x in steps_by(s, "kubeadm-apply") + steps_by(s, "drain")} & staged
    assert step(s, "kubeadm-plan", "master0")["id"] in ancestors(s, apply0["id"])
    snapshot = step(s, "etcd-snapshot", "master0")["id"]
    for check in ("deprecated-apis", "pdbs"):
        assert step(s, "preflight", check)["id"] in ancestors(s, snapshot)
    assert f"--removed-in {name.rsplit('.', 1)[0]} --apiservers 3" in step(s, "preflight", "deprecated-apis")["inputs"]["create"]
    assert not steps_by(s, "kubeadm-apply")[1:], "only the first master runs kubeadm upgrade apply"


def test_control_plane_steps_pin_the_catalog_versions(efficient):
    s = stage(efficient, "1.28.15")
    apply0 = step(s, "kubeadm-apply", "master0")
    assert "KUBEHOP_VERSION=1.28.15" in apply0["inputs"]["create"]
    assert apply0["inputs"]["triggers"] == ["1.28.15"]
    repo = step(s, "package-repo", "master1")
    assert "https://pkgs.k8s.io/core:/stable:/v1.28/deb/" in repo["inputs"]["create"]
    assert "KUBEHOP_FORCE=0" in apply0["inputs"]["create"]
    assert apply0["op"] == "replace"


def test_addons_follow_the_last_master_in_order(efficient):
    for name in VERSION_STAGES:
        s = stage(efficient, name)
        uncordons = {x["id"] for x in steps_by(s, "uncordon")}
        addons = steps_by(s, "addon")
        assert addons, f"stage {name} changes no addon"
        for addon in addons:
            assert uncordons <= ancestors(s, addon["id"]), addon["id"]
            check = step(s, "addon-check", addon["target"])
            assert addon["id"] in ancestors(s, check["id"])
        targets = [a["target"] for a in addons]
        if {"aws-cloud-controller-manager", "cluster-autoscaler"} <= set(targets):
            ccm = step(s, "addon", "aws-cloud-controller-manager")
            assert ccm["id"] in ancestors(s, step(s, "addon", "cluster-autoscaler")["id"])


def test_addon_releases_carry_the_catalog_versions(efficient):
    s = stage(efficient, "1.29.15")
    ca = step(s, "addon", "cluster-autoscaler")["inputs"]
    assert ca["version"] == "9.36.0" and ca["values"]["image"]["tag"] == "v1.29.5"
    ccm = step(s, "addon", "aws-cloud-controller-manager")["inputs"]
    assert ccm["values"]["image"]["tag"] == "v1.29.10"
    # adopted calico 3.28.5 (tested 1.27-1.30) stays: no calico release step at 1.29
    assert not [x for x in steps_by(s, "addon") if x["target"] == "calico"]
    assert any("ingress-nginx is retired" in w for w in efficient["warnings"])


def test_efficient_policy_rolls_pools_once_with_images_prepared(efficient):
    rolled = {s["name"]: {x["target"] for x in steps_by(s, "node-pool")} for s in efficient["stages"]}
    assert rolled["1.29.15"] == {"workers", "databases", "spark"}
    # prepare (the run after adoption) updates the groups with kubehop's settings (instance refresh), no new template
    assert all(not targets for name, targets in rolled.items() if name not in ("1.29.15", "prepare"))
    assert all(x["op"] == "update" and x["inputs"]["launchTemplate"]["version"] in {"12", "7", "21"}
               for x in steps_by(stage(efficient, "prepare"), "node-pool"))
    builds = {s["name"]: {x["target"] for x in steps_by(s, "image-build")} for s in efficient["stages"]}
    assert builds == {"prepare": {"worker", "spark"}, **{n: set() for n in builds if n != "prepare"}}, builds
    prepare = stage(efficient, "prepare")
    assert {x["target"] for x in steps_by(prepare, "image-build")} == {"worker", "spark"}
    spark = step(prepare, "image-build", "spark")
    assert step(prepare, "image-build", "worker")["id"] in spark["dependsOn"]
    s = stage(efficient, "1.29.15")
    uncordons = {x["id"] for x in steps_by(s, "uncordon")}
    for pool in ("workers", "databases", "spark"):
        node_pool = step(s, "node-pool", pool)
        assert uncordons <= ancestors(s, node_pool["id"])
        assert step(s, "launch-template", pool)["id"] in ancestors(s, node_pool["id"])
        assert node_pool["id"] in step(s, "rollout-wait", pool)["dependsOn"]
        assert step(s, "addon-check", "calico")["id"] in ancestors(s, node_pool["id"])
        assert step(s, "launch-template", pool)["inputs"]["imageId"].startswith("ami-")
    assert step(s, "launch-template", "workers")["inputs"]["metadataOptions"]["httpTokens"] == "required"
    # built in an earlier stage: the dependency is named across stages
    for pool, role in (("workers", "worker"), ("databases", "worker"), ("spark", "spark")):
        assert f"prepare/{role}-image-build" in step(s, "launch-template", pool)["after"]


def test_each_hop_policy_rolls_workers_in_every_version_stage(each_hop):
    for name in VERSION_STAGES:
        s = stage(each_hop, name)
        assert {x["target"] for x in steps_by(s, "node-pool")} == {"workers", "databases", "spark"}
        assert s["workers"] == name
        # kubelet never newer than the apiserver: pools wait for every master
        uncordons = {x["id"] for x in steps_by(s, "uncordon")}
        for x in steps_by(s, "launch-template"):
            assert uncordons <= ancestors(s, x["id"])
    s = stage(each_hop, "1.28.15")
    spark = step(s, "image-build", "spark")
    assert step(s, "image-build", "worker")["id"] in ancestors(s, spark["id"])
    lt = step(s, "launch-template", "workers")
    assert step(s, "image-build", "worker")["id"] in ancestors(s, lt["id"])


def test_production_choreography(efficient):
    maintaining = stage(efficient, "maintaining")
    switch = steps_by(maintaining, "mysql-switch")[0]
    assert steps_by(maintaining, "mysql-replication-check")[0]["id"] in ancestors(maintaining, switch["id"])
    assert steps_by(maintaining, "traffic-maintain")[0]["id"] in ancestors(maintaining, switch["id"])
    lag = steps_by(maintaining, "kafka-lag-gate")[0]
    stops = steps_by(maintaining, "mirrormaker-stop")
    assert {x["target"] for x in stops} == {"aws-uswest2-prod-b", "aws-uswest2-prod-a"}
    assert all(x["id"] in ancestors(maintaining, lag["id"]) for x in stops)
    for name in VERSION_STAGES:
        s = stage(efficient, name)
        verify = {x["id"] for x in steps_by(s, "verify")}
        assert verify
        # the join token's margin check is a check of the stage too: it runs beside the verifications
        checks = verify | {x["id"] for x in steps_by(s, "join-token-margin")}
        others = [x for x in s["steps"] if x["id"] not in checks]
        for v in verify:
            assert {o["id"] for o in others} <= ancestors(s, v)
    serving = stage(efficient, "serving")
    created = [x for x in serving["steps"] if x["op"] == "create"]
    start = [x for x in created if x["action"] == "mirrormaker-start"]
    mirror = step(serving, "mirror-lag-gate", "aws-uswest2-prod-b")
    serve = step(serving, "traffic-serve", "aws-uswest2-prod-b")
    canary = step(serving, "canary", "aws-uswest2-prod-b")
    assert len(start) == 2 and all(x["id"] in ancestors(serving, mirror["id"]) for x in start)
    assert mirror["id"] in ancestors(serving, serve["id"])
    assert serve["id"] in ancestors(serving, canary["id"])
    # the record the maintaining stage wrote brings MySQL back, after the lag gates and before users
    back = step(serving, "mysql-switch-back", "dcluster-mysql")
    assert mirror["id"] in ancestors(serving, back["id"]) and back["id"] in ancestors(serving, serve["id"])
    assert "--undo-from-record" in back["inputs"]["create"]
    assert "--clear-records /kubehop/aws-uswest2-prod-b/cutover" in canary["inputs"]["create"]
    # each lag gate is told what must be there (a missing group or topic fails it)
    assert "--groups events,transactions" in mirror["inputs"]["create"]
    consumer = step(serving, "kafka-lag-gate", "aws-uswest2-prod-b-consumer")
    assert "--groups cluster_a-consumer,backfill-consumer,velocity-al-consumer,velocity-consumer" in consumer["inputs"]["create"]


def test_secrets_never_appear_in_the_plan(efficient):
    text = json.dumps(efficient)
    assert engine.OFFLINE_SECRET not in text
    s = stage(efficient, "1.27.16")
    # the connection holds the SSH key, so Pulumi keeps the whole object secret
    assert step(s, "kubeadm-apply", "master0")["inputs"]["connection"].startswith("[secret:sshPrivateKey@")
    maintaining = stage(efficient, "maintaining")
    env = step(maintaining, "traffic-maintain", "aws-uswest2-prod-b")["inputs"]["environment"]
    assert env["KUBEHOP_TRAFFIC_TOKEN"].startswith("[secret:trafficToken@")


def test_human_output_is_a_table_per_stage():
    result = plan_cli("--stack", "prod-b", "--to", "1.28")
    assert result.returncode == 0, result.stderr
    assert "Stage 5/6: 1.28.15" in result.stdout and "Stage 1/6: adopt" in result.stdout and "kubeadm-apply" in result.stdout
    assert engine.OFFLINE_SECRET not in result.stdout


def test_a_five_master_cluster_plans_the_same_way(tmp_path):
    plan = build(read_stack_file(five_masters()), stack="stage-c", to="1.28", policy=None)
    assert [s["name"] for s in plan["stages"]] == ["adopt", "prepare", "1.27.16", "1.28.15"]
    s = stage(plan, "1.28.15")
    assert step(s, "etcd-snapshot", "cp-0")["id"] in ancestors(s, step(s, "kubeadm-apply", "cp-0")["id"])
    nodes = [f"cp-{i}" for i in range(5)]
    for before, after in zip(nodes, nodes[1:], strict=False):
        assert step(s, "uncordon", before)["id"] in ancestors(s, step(s, "kubeadm-node", after)["id"])
    assert len(steps_by(s, "kubeadm-node")) == 4


@pytest.mark.parametrize("to, text", [
    ("1.25", "older than the deployed control plane"),
    ("1.40", "not in the catalog"),
    ("1.29.99", "newer than the last 1.29 patch"),
    ("banana", "not a version"),
])
def test_impossible_targets_exit_2(to, text):
    result = plan_cli("--stack", "prod-b", "--to", to, "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert text in result.stderr and "--to" in result.stderr


def test_a_skip_in_config_exits_2_naming_the_key(tmp_path):
    data = prod_b()
    data["config"]["kubehop:kubernetesVersion"] = "1.28"
    data["config"]["kubehop:traffic"]["state"] = "maintaining"
    result = plan_cli("--stack", "prod-b", "--config", str(write_stack(tmp_path, data)))
    assert result.returncode == 2 and result.stdout == ""
    assert "kubehop:kubernetesVersion" in result.stderr and "skips minors" in result.stderr


def test_a_version_change_while_serving_exits_2(tmp_path):
    data = prod_b()
    data["config"]["kubehop:kubernetesVersion"] = "1.27"
    result = plan_cli("--stack", "prod-b", "--config", str(write_stack(tmp_path, data)))
    assert result.returncode == 2 and result.stdout == ""
    assert "kubehop:kubernetesVersion" in result.stderr and "serving" in result.stderr


def test_maintaining_while_the_sibling_maintains_exits_2(tmp_path):
    result = plan_cli("--stack", "prod-b", "--to", "1.27", "--sibling-state", "maintaining")
    assert result.returncode == 2, result.stdout
    assert "kubehop:traffic.state" in result.stderr and "sibling" in result.stderr


def test_invalid_config_exits_2_with_every_problem(tmp_path):
    data = prod_b()
    cfg = data["config"]
    cfg["kubehop:controlPlane"]["nodes"][1]["host"] = "not a host"
    cfg["kubehop:addons"]["cluster-autoscaler"] = {"chartVersion": "9.20.0"}
    cfg["kubehop:addons"]["traefik"] = {"enabled": True}
    result = plan_cli("--stack", "prod-b", "--to", "1.27", "--config", str(write_stack(tmp_path, data)))
    assert result.returncode == 2 and result.stdout == ""
    for key in ("kubehop:controlPlane.nodes[1].host", "kubehop:addons.traefik"):
        assert key in result.stderr


def test_bad_pin_exits_2(tmp_path):
    data = prod_b()
    data["config"]["kubehop:addons"]["cluster-autoscaler"] = {"chartVersion": "9.20.0"}
    result = plan_cli("--stack", "prod-b", "--config", str(write_stack(tmp_path, data)))
    assert result.returncode == 2
    assert "kubehop:addons.cluster-autoscaler.chartVersion" in result.stderr and "9.20.0" in result.stderr


def test_bad_cli_arguments_exit_2():
    assert plan_cli("--stack", "prod-b", "--worker-policy", "yolo").returncode == 2
    missing = plan_cli("--stack", "nope")
    assert missing.returncode == 2 and "Pulumi.nope.yaml" in missing.stderr
    assert plan_cli().returncode == 2


def _gate_argvs(plan: dict):
    import shlex

    for s in plan["stages"]:
        for x in s["steps"]:
            create = x["inputs"].get("create", "") if isinstance(x["inputs"], dict) else ""
            if isinstance(create, str) and create.startswith("bash components/scripts/run_gate.sh "):
                yield s["name"], x["id"], shlex.split(create)[2:]


def test_every_gate_step_parses_with_the_gate_cli(efficient, each_hop):
    """Contract between the components and the gates: every gate step's
    command line is accepted by `python -m kubehop gate` as it is."""
    from kubehop.gates.addons import _settle_arguments
    from kubehop.gates.cli import build_parser

    seen = set()
    for plan in (efficient, each_hop):
        for stage_name, step_id, argv in _gate_argvs(plan):
            try:
                args = build_parser().parse_args(argv)
            except SystemExit:
                pytest.fail(f"{stage_name}/{step_id}: the gate CLI rejects {argv}")
            if args.gate == "addon-check":
                _settle_arguments(args)  # the addon-specific rules (required probes, URLs)
            seen.add(args.gate)
    assert {"addon-check", "rollout", "nodes", "pods", "network", "http-check", "endpoints", "traffic-set",
            "mysql-replication", "serviceswitch", "mirrormaker", "kafka-lag", "mirror-lag", "canary"} <= seen


def test_pools_pin_a_concrete_template_version_and_refresh_preferences(efficient):
    s = stage(efficient, "1.29.15")
    for pool in ("workers", "databases", "spark"):
        inputs = step(s, "node-pool", pool)["inputs"]
        version = inputs["launchTemplate"]["version"]
        assert version.isdigit() and version != "1", f"{pool}: template version {version!r} is not a new concrete number"
        assert "desiredCapacity" not in inputs, "desired capacity stays with the cluster autoscaler"
        prefs = inputs["instanceRefresh"]["preferences"]
        assert inputs["instanceRefresh"]["strategy"] == "Rolling" and prefs["skipMatching"] is True
        wait = step(s, "rollout-wait", pool)["inputs"]["create"]
        assert f"--launch-template-version {version}" in wait and "--kubelet-version v1.29.15" in wait
    db = step(s, "node-pool", "databases")["inputs"]["instanceRefresh"]["preferences"]
    # one node at a time, no checkpoint pauses (they checked nothing): the gate steers the refresh
    assert db["minHealthyPercentage"] == 100 and db["maxHealthyPercentage"] == 110 and "checkpointPercentages" not in db
    db_wait = step(s, "rollout-wait", "databases")["inputs"]["create"]
    assert "--manage-refresh --min-healthy-percentage 100 --max-healthy-percentage 110" in db_wait
    workers = step(s, "node-pool", "workers")["inputs"]["instanceRefresh"]["preferences"]
    assert workers["minHealthyPercentage"] == 90
    assert step(s, "node-pool", "databases")["risk"] == "high"
    assert "one node at a time" in step(s, "node-pool", "databases")["impact"]


def test_plan_warns_about_placeholders_and_unpinned_host_keys(efficient, tmp_path):
    text = "\n".join(efficient["warnings"])
    assert "kubehop:nodeImages.cniPluginsSha256 is a placeholder" in text
    assert "SSH host keys are not pinned for master0, master1, master2" in text
    data = prod_b()
    for node in data["config"]["kubehop:controlPlane"]["nodes"]:
        node["hostKey"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample"
    data["config"]["kubehop:ssh"]["bastion"]["hostKey"] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample"
    data["config"]["kubehop:nodeImages"]["cniPluginsSha256"] = "ab" * 32
    plan = build(read_stack_file(data), stack="prod-b", to="1.27", policy=None)
    text = "\n".join(plan["warnings"])
    assert "cniPluginsSha256" not in text and "host keys" not in text


def test_a_fresh_join_token_precedes_every_rollout(efficient, each_hop):
    for plan, stages in ((efficient, ["1.29.15"]), (each_hop, VERSION_STAGES)):
        for name in stages:
            s = stage(plan, name)
            token = step(s, "join-token", "master0")
            assert step(s, "uncordon", "master2")["id"] in ancestors(s, token["id"])
            for pool in ("workers", "databases", "spark"):
                assert token["id"] in ancestors(s, step(s, "node-pool", pool)["id"])
            assert "KUBEHOP_TOKEN_TTL=24h" in token["inputs"]["create"]
    assert not steps_by(stage(efficient, "1.27.16"), "join-token"), "no new nodes, no new token"


def test_calico_crds_precede_the_release_wherever_calico_moves(efficient):
    # every stage, the adoption run included: calico adopted at 3.28.5 is imported at 3.28.5 with
    # 3.28.5's CRDs, never downgraded to the catalog's 1.26 pick, and (tested 1.27-1.30) stays through 1.29
    stages = [efficient["adopt"], *efficient["stages"]]
    assert release_moves(stages, "calico") == []
    adopt = efficient["adopt"]
    assert step(adopt, "addon", "calico")["inputs"]["version"] == "3.28.5"
    crds = step(adopt, "addon-crds", "calico")
    assert "--server-side" not in crds["inputs"]["create"]  # the gate runs kubectl; args are url + checksum
    assert "/v3.28.5/manifests/operator-crds.yaml" in crds["inputs"]["create"]
    for s in stages:
        for check in [x for x in steps_by(s, "addon-check") if x["target"] == "calico"]:
            assert "--image-tag v3.28.5 " in check["inputs"]["create"], s["name"]


def test_ingress_nginx_stays_on_4_11_8_through_1_29(efficient):
    for s in efficient["stages"]:
        moves = [x for x in steps_by(s, "addon") if x["target"] == "ingress-nginx"]
        if s["name"] == "prepare":  # kubehop's settings after adoption, at the same chart
            assert [x["inputs"]["version"] for x in moves] == ["4.11.8"]
            continue
        assert not moves, s["name"]
        assert not [x for x in steps_by(s, "addon-preflight")], s["name"]


def test_ca_ksm_ingress_start_side_by_side_after_ccm_check(efficient):
    s = stage(efficient, "1.29.15")
    ccm_check = step(s, "addon-check", "aws-cloud-controller-manager")
    checks = {t: step(s, "addon-check", t) for t in ("cluster-autoscaler", "kube-state-metrics", "ingress-nginx")}
    ca = step(s, "addon", "cluster-autoscaler")
    assert ccm_check["id"] in ancestors(s, ca["id"])
    for target, check in checks.items():
        assert ccm_check["id"] in ancestors(s, check["id"]), target
        others = {c["id"] for t, c in checks.items() if t != target}
        assert not others & ancestors(s, check["id"]), f"{target} waits for another addon's check"
    assert step(s, "addon-check", "calico")["id"] in ancestors(s, step(s, "addon", "aws-cloud-controller-manager")["id"])


def test_the_plan_is_the_same_every_time():
    """The SDK registers side-by-side resources, and serializes their properties, in any order:
    the plan orders steps by dependency level and id and sorts inputs, so two runs print the same."""
    from kubehop.plan import render

    first, second = (build(read_stack_file(prod_b()), stack="prod-b", to="1.28", policy=None) for _ in range(2))
    assert json.dumps(first) == json.dumps(second)
    assert render.render(first) == render.render(second)


def test_every_step_says_what_it_does(efficient):
    stages = [efficient["adopt"], *efficient["stages"]]
    silent = sorted({(s["id"], s["resourceType"]) for st in stages for s in st["steps"] if not s["impact"]})
    assert silent == []
