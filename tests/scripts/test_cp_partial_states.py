"""Partial states a failed run leaves on the masters, and the one re-run that finishes them.

A 3-master cluster at 1.27.16 (tests/helpers/cp_cluster.py: real loopback API
server, real kubectl, the per-minor stand-in kubeadm) takes the plan's 1.28.15
stage. Each case breaks the run somewhere, then runs the failed step again and
the rest of the stage: the stage must end finished, and a further run must
change nothing.
"""
from __future__ import annotations

import copy
import re

import pytest

from kubehop.plan.stages import build, read_stack_file
from tests.helpers.cp_cluster import Cluster
from tests.plan_helpers import prod_b
from tests.scripts.test_cp_kubeadm_minor import MASTERS, assert_stage_finished, plan_order, run_stage

STAGE = "1.28.15"
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


def stage_of(data: dict, name: str = STAGE) -> list[dict]:
    """The master steps of stage `name` in the plan of a stack file `data`, in the plan's order."""
    plan = build(read_stack_file(data), stack="prod-b", to=name.rsplit(".", 1)[0], policy=None)
    return plan_order(next(s for s in plan["stages"] if s["name"] == name))


@pytest.fixture(scope="module")
def steps() -> list[dict]:
    return stage_of(prod_b())


@pytest.fixture
def cluster(kube_api, tmp_path) -> Cluster:
    return Cluster(kube_api("prod-b"), tmp_path / "masters", MASTERS, "1.27.16")


def by_id(steps: list[dict], step_id: str) -> dict:
    return next(s for s in steps if s["id"] == step_id)


def before(steps: list[dict], step_id: str) -> list[dict]:
    return steps[:[s["id"] for s in steps].index(step_id)]


def finish_and_rerun(cluster: Cluster, steps: list[dict], broken: str) -> None:
    """The rest of the stage from the step that broke, then that master's steps once more: all skipped."""
    rest = steps[[s["id"] for s in steps].index(broken):]
    run_stage(cluster, rest)
    assert_stage_finished(cluster, STAGE)
    target = by_id(steps, broken)["target"]
    for run in run_stage(cluster, [s for s in rest if s["target"] == target]):
        assert run.skipped and run.mutating == [], str(run)


@pytest.mark.parametrize(("step_id", "killed_after"), [
    ("master0-kubeadm-apply", "kube-apiserver"),
    ("master1-kubeadm-node", "etcd"), ("master1-kubeadm-node", "kube-controller-manager"),
    ("master2-kubeadm-node", "kube-scheduler"),
])
def test_kubeadm_killed_between_manifests_is_run_again_not_skipped(cluster, steps, step_id, killed_after):
    run_stage(cluster, before(steps, step_id))
    master = cluster.masters[by_id(steps, step_id)["target"]]
    master.update(kubeadm_die_after=killed_after)
    broken = cluster.run_step(by_id(steps, step_id))
    assert broken.rc == 1 and "exited 137" in broken.err, str(broken)
    written = COMPONENTS[:("etcd", *COMPONENTS).index(killed_after)]
    assert [c for c in COMPONENTS if master.manifest_version(c) == f"v{STAGE}"] == list(written)

    again = cluster.run_step(by_id(steps, step_id))
    assert again.rc == 0 and not again.skipped, str(again)
    assert "not done yet (" in again.out
    if killed_after == "kube-scheduler" and step_id != "master0-kubeadm-apply":
        assert "the kubelet config is older than the manifests" in again.out  # every manifest is new already
    for component in written:  # kubeadm itself skips what it had finished
        assert f"Current and new manifests of {component} are equal, skipping upgrade" in again.out
    finish_and_rerun(cluster, steps, step_id)


def test_apply_killed_after_its_upload_before_the_kubelet_config(cluster, steps):
    """kubeadm-config already says the target: the kubelet config still tells the apply is unfinished."""
    run_stage(cluster, before(steps, "master0-kubeadm-apply"))
    master0 = cluster.masters["master0"]
    apply = cluster.run_step(by_id(steps, "master0-kubeadm-apply"))
    assert apply.rc == 0
    config = master0.kubelet_config
    config.write_text(config.read_text())  # the state just before the kubelet-config phase: a config older
    for component in COMPONENTS:           # than the manifests (kubeadm writes it after them)
        path = master0.root / f"etc/kubernetes/manifests/{component}.yaml"
        path.write_text(path.read_text())
    again = cluster.run_step(by_id(steps, "master0-kubeadm-apply"))
    assert again.rc == 0 and not again.skipped and "the kubelet config is older than the manifests" in again.out
    finish_and_rerun(cluster, steps, "master0-kubeadm-apply")


def test_a_master_cordoned_before_the_hop_stays_cordoned(cluster, steps):
    cluster.api.edit("Node", "master1", None, lambda n: n["spec"].update(unschedulable=True))  # an operator's cordon
    runs = {r.name: r for r in run_stage(cluster, steps)}
    assert "master1 was cordoned before this hop, not by kubehop" in runs["master1-drain"].out
    assert re.search(r"cordoned before the hop, not by kubehop: (left|leaving it) cordoned", runs["master1-uncordon"].out)
    node = cluster.node("master1")
    assert node["spec"]["unschedulable"] is True and "kubehop.io/cordoned" not in node["metadata"].get("annotations", {})
    for other in ("master0", "master2"):
        assert not cluster.node(other)["spec"].get("unschedulable")
    for run in run_stage(cluster, steps):
        assert run.skipped and run.mutating == [], str(run)
    assert cluster.node("master1")["spec"]["unschedulable"] is True


def test_a_drain_that_failed_after_its_cordon_is_uncordoned_by_kubehop(cluster, steps):
    run_stage(cluster, before(steps, "master1-drain"))
    cluster.masters["master1"].update(fail=[{"cmd": "kubectl", "match": r"\bdrain master1\b", "rc": 1, "times": 1,
                                             "stderr": "error: unable to drain node \"master1\""}])
    assert cluster.run_step(by_id(steps, "master1-drain")).rc == 1
    node = cluster.node("master1")
    assert node["spec"]["unschedulable"] is True and node["metadata"]["annotations"]["kubehop.io/cordoned"] == f"v{STAGE}"
    again = cluster.run_step(by_id(steps, "master1-drain"))
    assert again.rc == 0 and "already cordoned by kubehop (an earlier run)" in again.out
    finish_and_rerun(cluster, steps, "master1-drain")


@pytest.mark.parametrize(("ready", "kubelet", "last_seen"), [
    ("False", f"v{STAGE}", f"Ready=False kubelet=v{STAGE}"),
    ("True", "v1.27.16", "Ready=True kubelet=v1.27.16"),
])
def test_uncordon_is_done_only_when_ready_at_the_version(cluster, ready, kubelet, last_seen):
    """No cordon to lift, yet not done: the node must be Ready AND report the kubelet version."""
    def look(node):
        node["status"]["nodeInfo"]["kubeletVersion"] = kubelet
        node["status"]["conditions"] = [{"type": "Ready", "status": ready}]
    cluster.api.edit("Node", "master1", None, look)
    run = cluster.run("master1", "uncordon.sh", KUBEHOP_NODE="master1", KUBEHOP_VERSION=STAGE,
                      KUBEHOP_READY_TIMEOUT="1", KUBEHOP_POLL_INTERVAL="0.2")
    assert run.rc == 1 and not run.skipped, str(run)
    assert f"master1 did not become Ready with kubelet v{STAGE} within 1s (last seen: schedulable=yes {last_seen})" in run.err


def test_kubeadm_refuses_to_skip_a_minor(cluster):
    master0 = cluster.masters["master0"]
    master0.update(packages={**master0.state()["packages"], "kubeadm": "1.29.15-1.1"})
    run = cluster.run("master0", "kubeadm_apply.sh", KUBEHOP_VERSION="1.29.15")
    assert run.rc == 1 and "kubeadm upgrade apply v1.29.15 exited 1" in run.err
    assert 'Specified version to upgrade to "v1.29.15" is too high; kubeadm can upgrade only 1 minor version at a time' in run.out
    assert master0.manifest_version("kube-apiserver") == "v1.27.16" and cluster.cluster_version() == "v1.27.16"


def test_kubeadm_node_before_the_first_masters_apply_changes_nothing(cluster, steps):
    run_stage(cluster, [s for s in before(steps, "master0-kubeadm-apply") if s["target"] == "master1"])
    run = cluster.run_step(by_id(steps, "master1-kubeadm-node"))
    assert run.rc == 1 and "kubeadm upgrade apply v1.28.15 has not finished on the first master" in run.err
    assert run.mutating == [] and cluster.masters["master1"].manifest_version("kube-apiserver") == "v1.27.16"


def test_apply_is_bounded_by_its_timeout_even_detached(cluster, steps):
    run_stage(cluster, before(steps, "master0-kubeadm-apply"))
    cluster.masters["master0"].update(kubeadm_sleep=20)
    step = copy.deepcopy(by_id(steps, "master0-kubeadm-apply"))
    step["inputs"]["create"] = step["inputs"]["create"].replace("KUBEHOP_APPLY_TIMEOUT=900", "KUBEHOP_APPLY_TIMEOUT=2")
    run = cluster.run_step(step)
    assert run.rc == 1 and "FAILED: kubeadm upgrade apply did not finish within 2s and was stopped" in run.err
    status = cluster.run("master0", "kubeadm_apply.sh", KUBEHOP_VERSION=STAGE, KUBEHOP_ADDONS="0")
    assert "still running" not in status.out  # RuntimeMaxSec stopped it: nothing left running


def test_single_master_from_1_28_apply_upgrades_the_addons(kube_api, tmp_path):
    data = prod_b()
    data["config"]["kubehop:controlPlane"]["nodes"] = data["config"]["kubehop:controlPlane"]["nodes"][:1]
    steps = stage_of(data)
    cluster = Cluster(kube_api("single"), tmp_path / "masters", ["master0"], "1.27.16")
    runs = {r.name: r for r in run_stage(cluster, steps)}
    assert "Applied essential addon: kube-proxy" in runs["master0-kubeadm-apply"].out
    assert "CoreDNS and kube-proxy upgraded" in runs["master0-kubeadm-apply"].out
    assert cluster.addon_images()[0] == f"v{STAGE}"
