"""Complete orders, read from the plan's own output: every master's whole chain, every addon,
every pool, the serving stage's gates, and which credentials reach which step.

The expected orders are written here from the upstream runbooks, not from the code:
- kubeadm "Upgrading kubeadm clusters" (kubernetes.io/docs/tasks/administer-cluster/kubeadm/
  kubeadm-upgrade/): upgrade kubeadm, `kubeadm upgrade plan` + `apply` on the first control-plane
  node, `kubeadm upgrade node` on the others, and on each node after its kubeadm step: drain,
  upgrade kubelet and kubectl, restart, uncordon - one node at a time.
- the seed runbook (addons after the control plane: calico first, the cloud controller manager
  before cluster-autoscaler and ingress-nginx, which need the node and load-balancer controllers).
"""
from __future__ import annotations

import copy

import pytest

from kubehop.plan.stages import build, read_stack_file
from tests.plan_helpers import ancestors, five_masters, prod_b, step, steps_by

CLUSTER, SIBLING = "aws-uswest2-prod-b", "aws-uswest2-prod-a"
FIRST_MASTER = ["node-preflight", "package-repo", "kubeadm-install", "kubeadm-plan", "kubeadm-apply", "drain", "kubelet-upgrade", "uncordon"]
OTHER_MASTER = ["node-preflight", "package-repo", "kubeadm-install", "kubeadm-node", "drain", "kubelet-upgrade", "uncordon"]
RUNBOOK_ADDONS = ["calico", "aws-cloud-controller-manager", "cluster-autoscaler", "kube-state-metrics", "ingress-nginx"]
ADDON_ORDER = [("calico", "aws-cloud-controller-manager"), ("aws-cloud-controller-manager", "cluster-autoscaler"),
               ("aws-cloud-controller-manager", "ingress-nginx")]


def plan_of(data: dict, policy: str = "efficient") -> list[dict]:
    return build(read_stack_file(data), stack="prod-b", to="1.29", policy=policy)["stages"]


@pytest.fixture(scope="module")
def stages() -> list[dict]:
    return plan_of(prod_b())


def version_stages(stages: list[dict]) -> list[dict]:
    return [s for s in stages if s["name"][0].isdigit()]


def assert_chain(s: dict, target: str, actions: list[str], also: tuple[str, ...] = ()) -> None:
    """The target's steps are exactly `actions` (and `also`), each action after the one before it."""
    mine = [x for x in s["steps"] if x["target"] == target]
    assert sorted(x["action"] for x in mine) == sorted([*actions, *also]), (s["name"], target)
    for before, after in zip(actions, actions[1:], strict=False):
        assert step(s, before, target)["id"] in ancestors(s, step(s, after, target)["id"]), \
            f"{s['name']}: {target} {before} is not before {after}"


@pytest.mark.parametrize("data", [prod_b, five_masters], ids=["prod-b", "five-masters"])
def test_every_master_runs_its_whole_chain_one_master_at_a_time(data):
    config = data()
    masters = [n["name"] for n in config["config"]["kubehop:controlPlane"]["nodes"]]
    for s in version_stages(plan_of(config)):
        assert sorted(x["target"] for x in steps_by(s, "uncordon")) == sorted(masters)
        for i, master in enumerate(masters):
            if i == 0:  # the etcd snapshot (and at 1.29 the join token for the new pools) also run here, and
                # the check that the published token has its margin left (the renewal timer came with adoption)
                joins = ("join-token",) if s["name"] == "1.29.15" else ()
                margin = ("join-token-margin",) if config["config"].get("kubehop:nodePools") else ()
                assert_chain(s, master, FIRST_MASTER, ("etcd-snapshot", *joins, *margin))
                snapshot = step(s, "etcd-snapshot", master)["id"]
                assert snapshot in ancestors(s, step(s, "kubeadm-apply", master)["id"])
                # every master's read-only preflight passes before anything on any master moves
                before_snapshot = ancestors(s, snapshot)
                assert all(step(s, "node-preflight", m)["id"] in before_snapshot for m in masters)
            else:  # nothing running on this master is touched before the previous master is back
                assert_chain(s, master, OTHER_MASTER)
                assert step(s, "uncordon", masters[i - 1])["id"] in ancestors(s, step(s, "kubeadm-node", master)["id"])


def test_every_addon_in_order_in_every_stage(stages):
    """Each addon's first step waits for the whole of the addon it depends on (release and check)."""
    seen = 0
    for s in stages:
        steps = {name: [x for x in s["steps"] if x["target"] == name and x["action"].startswith("addon")]
                 for pair in ADDON_ORDER for name in pair}
        for first, then in ADDON_ORDER:
            if not steps[first] or not steps[then]:
                continue
            seen += 1
            for later in steps[then]:
                before = ancestors(s, later["id"])
                assert {x["id"] for x in steps[first]} <= before, f"{s['name']}: {later['id']} before {first} is done"
        if steps["calico"]:  # calico (the pod network) precedes every other addon of the runbook
            others = [x for x in s["steps"] if x["action"].startswith("addon") and x["target"] in RUNBOOK_ADDONS[1:]]
            for x in others:
                assert {c["id"] for c in steps["calico"]} <= ancestors(s, x["id"]), f"{s['name']}: {x['id']} before calico"
    assert seen >= 10  # adopt, prepare and three version stages order them


def pools_config(max_parallel: int, budget: int) -> dict:
    data = copy.deepcopy(prod_b())
    data["config"]["kubehop:rollout"] = {"maxParallelPools": max_parallel, "maxUnavailableNodes": budget}
    return data


def rolled_before(s: dict, first: str, then: str) -> bool:
    """`then`'s group moves (and its refresh starts) only after `first` rolled."""
    return step(s, "rollout-wait", first)["id"] in ancestors(s, step(s, "node-pool", then)["id"])


@pytest.mark.parametrize("max_parallel, budget, serial", [(1, 20, True), (3, 1, True), (3, 200, False)])
def test_pools_roll_in_the_waves_the_config_allows(max_parallel, budget, serial):
    """workers and spark (stateless) roll side by side only when both the pool count and the
    capacity budget allow; the database pool never waits for them nor they for it."""
    (s,) = [x for x in plan_of(pools_config(max_parallel, budget)) if x["name"] == "1.29.15"]
    assert {x["target"] for x in steps_by(s, "node-pool")} == {"workers", "databases", "spark"}
    assert rolled_before(s, "workers", "spark") is serial
    assert not rolled_before(s, "spark", "workers")
    for other in ("workers", "spark"):
        assert not rolled_before(s, "databases", other) and not rolled_before(s, other, "databases")


def test_database_pools_roll_one_at_a_time():
    data = copy.deepcopy(prod_b())
    pools = data["config"]["kubehop:nodePools"]
    second = copy.deepcopy(next(p for p in pools if p.get("database")))
    second.update(name="databases-2", asgName=second["asgName"] + "-2")
    pools.append(second)
    launch_templates = data["config"]["kubehop:adopt"]["launchTemplates"]
    launch_templates["databases-2"] = dict(launch_templates["databases"], id="lt-0d4e5f60718293a41")
    data["config"]["kubehop:rollout"] = {"maxParallelPools": 3, "maxUnavailableNodes": 200}
    (s,) = [x for x in plan_of(data) if x["name"] == "1.29.15"]
    assert rolled_before(s, "databases", "databases-2")


def test_serving_waits_for_both_lag_gates_before_traffic_comes_back(stages):
    serving = next(s for s in stages if s["name"] == "serving")
    serve = step(serving, "traffic-serve", CLUSTER)
    before = ancestors(serving, serve["id"])
    assert step(serving, "mirror-lag-gate", CLUSTER)["id"] in before
    consumer = step(serving, "kafka-lag-gate", f"{CLUSTER}-consumer")
    assert consumer["id"] in before and "kafka-lag --prometheus-url" in consumer["inputs"]["create"]
    assert "--threshold 1000" in consumer["inputs"]["create"]  # the runbook's lag < 1k
    assert serve["id"] in ancestors(serving, step(serving, "canary", CLUSTER)["id"])


def test_each_mirrormaker_step_gets_its_own_clusters_kubeconfig(stages):
    found = 0
    for s in stages:
        for x in s["steps"]:
            if x["action"].startswith("mirrormaker-") and x["op"] != "delete":
                found += 1
                want = "siblingKubeconfig" if x["target"] == SIBLING else "kubeconfig"
                assert x["target"] in (CLUSTER, SIBLING)
                assert x["inputs"]["environment"]["KUBEHOP_KUBECONFIG_DATA"].startswith(f"[secret:{want}@"), x["id"]
    assert found >= 4  # stop and start, on both clusters


def test_traffic_and_canary_steps_get_the_traffic_token(stages):
    found = 0
    for s in stages:
        for x in s["steps"]:
            if x["action"] in ("traffic-maintain", "traffic-serve", "canary") and x["op"] != "delete":
                found += 1
                assert x["inputs"]["environment"]["KUBEHOP_TRAFFIC_TOKEN"].startswith("[secret:trafficToken@"), x["id"]
    assert found == 3


def test_verification_expects_workers_at_their_own_version(stages):
    """Efficient policy: pools stay on 1.26 until the 1.29 stage; nodes-verify must not ask 1.28 of them."""
    want = {"1.27.16": "v1.26.15", "1.28.15": "v1.26.15", "1.29.15": "v1.29.15"}
    for s in version_stages(stages):
        create = step(s, "verify", "nodes")["inputs"]["create"]
        assert f"--control-plane-version v{s['name']} --worker-version {want[s['name']]} " in create
