"""Every master's recorded steps of a >= 1.28 stage over a real sshd, in the plan's order.

Three real OpenSSH servers on 127.0.0.1 play master0..master2 of one cluster
(tests/helpers/cp_cluster.py: a real loopback API server that the real kubectl
talks to, the per-minor stand-in kubeadm, systemd-run and apt). The real ssh
client sends each step's recorded command line and stdin to its target: the
1.28.15 stage runs master0 through master2, then a second run finds every step
done. A connection dropped in the middle of master0's apply leaves kubeadm
running (systemd-run); the re-run waits for it instead of starting a second one.
"""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from kubehop.plan.stages import build, read_stack_file
from tests.helpers.cp_cluster import Cluster, Master, is_mutating
from tests.plan_helpers import prod_b
from tests.scripts.test_cp_kubeadm_minor import MASTERS, assert_stage_finished, plan_order
from tests.scripts.test_ssh_e2e import Sshd

STAGE = "1.28.15"


@pytest.fixture(scope="module")
def stage_steps() -> list[dict]:
    plan = build(read_stack_file(prod_b()), stack="prod-b", to="1.28", policy=None)
    return plan_order(next(s for s in plan["stages"] if s["name"] == STAGE))


def login_env(master: Master) -> dict[str, str]:
    env = master.env()
    env.pop("HOME")
    return env


@pytest.fixture
def masters(kube_api, tmp_path):
    cluster = Cluster(kube_api("prod-b"), tmp_path / "masters", MASTERS, "1.27.16")
    servers = {}
    try:
        for name, master in cluster.masters.items():
            sudo = master.bin / "sudo"
            sudo.write_text('#!/bin/sh\nexec "$@"\n')  # the steps run as root already
            sudo.chmod(0o755)
            (tmp_path / name).mkdir()
            servers[name] = Sshd(tmp_path / name, login_env(master))
            probe = servers[name].run('echo "$KUBEHOP_ROOT"')
            assert probe.returncode == 0 and probe.stdout.strip() == str(master.root), \
                f"sshd did not set the sandbox environment; refusing to run steps: {probe.stdout}{probe.stderr}"
        yield cluster, servers
    finally:
        for server in servers.values():
            server.stop()


def calls(master: Master) -> list[dict]:
    return [json.loads(line) for line in master.log.read_text().splitlines()]


def send(servers, step) -> subprocess.CompletedProcess:
    return servers[step["target"]].run(step["inputs"]["create"], step["inputs"]["stdin"])


def test_every_master_over_ssh_in_plan_order_then_a_rerun_skips_everything(masters, stage_steps):
    cluster, servers = masters
    order = [(s["target"], s["action"]) for s in stage_steps]
    for i in range(1, len(MASTERS)):  # each other master: kubeadm upgrade node before its drain and kubelet
        node = f"master{i}"
        assert order.index((node, "kubeadm-node")) < order.index((node, "drain")) < order.index((node, "kubelet-upgrade"))
    for step in stage_steps:
        result = send(servers, step)
        assert result.returncode == 0, f"{step['id']}: {result.stdout}{result.stderr}"
    assert_stage_finished(cluster, STAGE)
    before = {n: len(calls(m)) for n, m in cluster.masters.items()}
    for step in stage_steps:
        again = send(servers, step)
        done = "(nothing was changed)" if step["action"] == "node-preflight" else "already done"  # read-only: re-checks
        assert again.returncode == 0 and done in again.stdout, f"{step['id']}: {again.stdout}{again.stderr}"
    mutating = [c for n, m in cluster.masters.items() for c in calls(m)[before[n]:] if is_mutating(c)]
    assert mutating == []


def test_a_connection_dropped_during_apply_leaves_kubeadm_running_and_the_rerun_waits(masters, stage_steps):
    cluster, servers = masters
    master0 = cluster.masters["master0"]
    upto_apply = stage_steps[:[s["id"] for s in stage_steps].index("master0-kubeadm-apply")]
    for step in upto_apply:
        assert send(servers, step).returncode == 0, step["id"]
    apply = next(s for s in stage_steps if s["id"] == "master0-kubeadm-apply")
    master0.update(kubeadm_sleep=4)  # kubeadm pauses after etcd's manifest: the connection drops meanwhile
    server = servers["master0"]
    client = subprocess.Popen(
        ["ssh", "-i", str(server.key), "-p", str(server.port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@127.0.0.1", apply["inputs"]["create"]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client.stdin.write(apply["inputs"]["stdin"])
    client.stdin.close()
    deadline = time.monotonic() + 20
    while not any(c["cmd"] == "kubeadm" and c["argv"][:2] == ["upgrade", "apply"] for c in calls(master0)):
        assert time.monotonic() < deadline, "kubeadm upgrade apply never started"
        time.sleep(0.1)
    client.kill()  # the connection drops mid-apply
    client.wait()

    again = send(servers, apply)  # pulumi up again, while the first kubeadm still runs
    assert again.returncode == 0, again.stdout + again.stderr
    assert "kubehop-kubeadm-apply.service from an earlier run is still running" in again.stdout
    assert "waiting for it to end instead of starting a second one" in again.stdout
    assert "already done" in again.stdout  # the detached kubeadm finished the apply
    applies = [c for c in calls(master0) if c["cmd"] == "kubeadm" and c["argv"][:2] == ["upgrade", "apply"]]
    assert len(applies) == 1, "a second kubeadm upgrade apply was started"
    assert cluster.cluster_version() == f"v{STAGE}"
    assert all(master0.manifest_version(c) == f"v{STAGE}"
               for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"))
