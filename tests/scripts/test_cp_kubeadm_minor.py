"""The masters' steps of whole stages, as the plan records them, against a
3-master cluster: a real loopback API server driven by the REAL kubectl, and a
stand-in kubeadm that behaves like the kubeadm of each minor
(kubehop/kubeadm_upgrade.py; tests/standins/kubeadm_standin.py).

prod-b goes 1.26 -> 1.27 -> 1.28 -> 1.29: the 1.27 stage upgrades CoreDNS and
kube-proxy in master0's apply, the 1.28 and 1.29 stages in master2's
`kubeadm upgrade node` (apply prints the deferral line and exits 0). A second
run of every stage changes nothing.
"""
from __future__ import annotations

import pytest

from kubehop.kubeadm_upgrade import kubeadm_minor
from kubehop.plan.stages import build, read_stack_file
from tests.helpers.cp_cluster import Cluster
from tests.plan_helpers import prod_b

ACTIONS = ("node-preflight", "package-repo", "kubeadm-install", "kubeadm-plan", "kubeadm-apply", "kubeadm-node", "drain",
           "kubelet-upgrade", "uncordon")
MASTERS = ["master0", "master1", "master2"]


def plan_order(stage: dict) -> list[dict]:
    """The stage's master steps in the plan's own order: dependencies first, the
    recorded order among steps that are ready together."""
    steps = [s for s in stage["steps"] if s["resourceType"] == "command:remote:Command" and s["action"] in ACTIONS]
    ids = {s["id"] for s in steps}
    done: set[str] = set()
    ordered: list[dict] = []
    while len(ordered) < len(steps):
        ready = next(s for s in steps if s["id"] not in done and all(d in done or d not in ids for d in s["dependsOn"]))
        ordered.append(ready)
        done.add(ready["id"])
    return ordered


@pytest.fixture(scope="module")
def stages() -> dict[str, list[dict]]:
    plan = build(read_stack_file(prod_b()), stack="prod-b", to="1.29", policy=None)
    return {s["name"]: plan_order(s) for s in plan["stages"] if s["name"][:4] in ("1.27", "1.28", "1.29")}


@pytest.fixture
def cluster(kube_api, tmp_path) -> Cluster:
    return Cluster(kube_api("prod-b"), tmp_path / "masters", MASTERS, "1.26.15")


def run_stage(cluster: Cluster, steps: list[dict]) -> list:
    """Every step in order, each must succeed; after each, no kubelet runs newer than its
    own node's kube-apiserver (version skew policy: kubelet never newer than kube-apiserver)."""
    runs = []
    for step in steps:
        run = cluster.run_step(step)
        assert run.rc == 0, str(run)
        runs.append(run)
        for name, master in cluster.masters.items():
            kubelet = cluster.node(name)["status"]["nodeInfo"]["kubeletVersion"]
            assert vkey(kubelet) <= vkey(master.manifest_version("kube-apiserver")), \
                f"after {step['id']}: {name}'s kubelet {kubelet} is newer than its kube-apiserver"
    return runs


def vkey(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.lstrip("v").split("."))


def assert_stage_finished(cluster: Cluster, version: str) -> None:
    v = f"v{version}"
    assert cluster.cluster_version() == v
    proxy, dns = cluster.addon_images()
    assert proxy == v and dns == kubeadm_minor(version.rsplit(".", 1)[0]).coredns
    for name, master in cluster.masters.items():
        assert {c: master.manifest_version(c) for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")} \
            == dict.fromkeys(("kube-apiserver", "kube-controller-manager", "kube-scheduler"), v), name
        node = cluster.node(name)
        assert node["status"]["nodeInfo"]["kubeletVersion"] == v
        assert not node["spec"].get("unschedulable") and "kubehop.io/cordoned" not in node["metadata"].get("annotations", {})
        assert master.state()["packages"] == dict.fromkeys(("kubeadm", "kubelet", "kubectl"), f"{version}-1.1")


def test_three_masters_through_1_27_1_28_1_29_then_every_rerun_is_a_no_op(cluster, stages):
    for name, steps in stages.items():
        first = run_stage(cluster, steps)
        assert_stage_finished(cluster, name)
        by_id = {r.name: r for r in first}
        apply, last = by_id["master0-kubeadm-apply"], by_id["master2-kubeadm-node"]
        if kubeadm_minor(name.rsplit(".", 1)[0]).addons_wait_for_all_masters:
            assert "skip upgrade addons because control plane instances [master1 master2] have not been upgraded" in apply.out
            assert "Applied essential addon: kube-proxy" in last.out
            assert "Applied essential addon" not in by_id["master1-kubeadm-node"].out
        else:
            assert "Applied essential addon: kube-proxy" in apply.out and "Applied essential addon" not in last.out
        again = run_stage(cluster, steps)
        for run in again:
            assert run.skipped and run.mutating == [], str(run)
