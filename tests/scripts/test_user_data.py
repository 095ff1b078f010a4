"""The node boot script (components/scripts/node_pool/user_data.sh), run for real.

The text components.node_pool.user_data() puts in the launch template (the
cluster name, labels and taints filled in) runs under bash in a sandbox with
a PATH holding recording stand-ins for curl (IMDSv2: a token, then metadata
only with that token), aws (`ssm get-parameter`, parameters in state.json,
with empty values and transient failures on request) and kubeadm (`join`:
records the configuration file it was given, content and mode), plus the few
real tools the script uses. KUBEHOP_RUN_DIR and KUBEHOP_ROOT move the join
file and the "already joined" check into the sandbox.
"""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.node_pool import user_data
from kubehop.config import NodePool

CLUSTER, REGION = "prod-b", "eu-west-1"
ENDPOINT = "api.prod-b.internal:6443"
TOKEN = "abcdef.0123456789abcdef"
CA_HASH = "sha256:" + "0123456789abcdef" * 4
HOSTNAME = "ip-10-0-1-23.eu-west-1.compute.internal"
IMDS_TOKEN = "imds-session-7f3a"
PARAMS = {f"/kubehop/{CLUSTER}/api-endpoint": ENDPOINT, f"/kubehop/{CLUSTER}/join-token": TOKEN,
          f"/kubehop/{CLUSTER}/ca-cert-hash": CA_HASH}
REAL_TOOLS = ("bash", "cat", "rm", "sleep", "base64")

STANDIN = r'''
import json, os, stat, sys
rig, tool, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(os.path.join(rig, "calls.jsonl"), "a") as fh:
    fh.write(json.dumps({"cmd": tool, "argv": argv}) + "\n")
state_path = os.path.join(rig, "state.json")
state = json.load(open(state_path))

def opt(name):
    return argv[argv.index(name) + 1] if name in argv else None

if tool == "curl":
    url = next(a for a in argv if a.startswith("http://"))
    if "-X" in argv and opt("-X") == "PUT":
        if state.get("imds_v1_only"):
            sys.stderr.write("curl: (22) The requested URL returned error: 403\n")
            sys.exit(22)
        if url != "http://169.254.169.254/latest/api/token" or not any(
                a.startswith("X-aws-ec2-metadata-token-ttl-seconds:") for a in argv):
            sys.exit(22)
        print(state["imds_token"], end="")
        sys.exit(0)
    if f"X-aws-ec2-metadata-token: {state['imds_token']}" not in argv:  # IMDSv2 only
        sys.stderr.write("curl: (22) The requested URL returned error: 401\n")
        sys.exit(22)
    meta = state["metadata"]
    key = url.split("/latest/meta-data/", 1)[-1]
    if key not in meta:
        sys.stderr.write("curl: (22) The requested URL returned error: 404\n")
        sys.exit(22)
    print(meta[key], end="")
elif tool == "aws" and argv[:2] == ["autoscaling", "complete-lifecycle-action"]:
    state.setdefault("completed", []).append(opt("--lifecycle-action-result"))
    json.dump(state, open(state_path, "w"))
elif tool == "kubectl":
    assert argv[0] == "--kubeconfig" and argv[2:5] == ["get", "node", state["metadata"]["local-hostname"]], argv
    seen = state["node_seen"]
    print(seen.pop(0) if len(seen) > 1 else seen[0], end="")
    json.dump(state, open(state_path, "w"))
elif tool == "aws":
    assert argv[:2] == ["ssm", "get-parameter"], argv
    name = opt("--name")
    left = state["fail_times"].get(name, 0)
    if left:
        state["fail_times"][name] = left - 1
        json.dump(state, open(state_path, "w"))
        sys.stderr.write("\nAn error occurred (AccessDeniedException) when calling the GetParameter operation: "
                         "User is not authorized to perform: ssm:GetParameter\n")
        sys.exit(254)
    if opt("--region") is None:
        sys.exit(253)
    if name not in state["params"]:
        sys.stderr.write("\nAn error occurred (ParameterNotFound) when calling the GetParameter operation: \n")
        sys.exit(254)
    print(state["params"][name])
elif tool == "kubeadm":
    assert argv[:2] == ["join", "--config"], argv
    path = argv[2]
    with open(path) as fh:
        content = fh.read()
    state["joined"] = {"config": content, "mode": oct(stat.S_IMODE(os.stat(path).st_mode))}
    json.dump(state, open(state_path, "w"))
    print("This node has joined the cluster" if state["join_rc"] == 0 else "error execution phase preflight")
    sys.exit(state["join_rc"])
'''


class Box:
    """A sandboxed node: root, run dir, stand-ins and their state."""

    def __init__(self, tmp: Path, pool: dict | None = None, kubelet: str = "", hook: str = ""):
        self.tmp = tmp
        self.root, self.run_dir, self.bin, self.rig = tmp / "root", tmp / "run", tmp / "bin", tmp / "rig"
        for d in (self.root, self.run_dir, self.bin, self.rig):
            d.mkdir()
        (self.rig / "standin.py").write_text(STANDIN)
        for tool in ("curl", "aws", "kubeadm", "kubectl"):
            wrapper = self.bin / tool
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "{self.rig}/standin.py" "{self.rig}" {tool} "$@"\n')
            wrapper.chmod(0o755)
        for tool in REAL_TOOLS:
            (self.bin / tool).symlink_to(shutil.which(tool))
        self.write_state({"imds_token": IMDS_TOKEN, "params": dict(PARAMS), "fail_times": {}, "join_rc": 0,
                          "metadata": {"placement/region": REGION, "local-hostname": HOSTNAME}})
        pool = NodePool.model_validate(pool or {
            "name": "batch", "asgName": "asg-batch", "instanceType": "m5.large", "minSize": 0, "maxSize": 3,
            "subnetIds": ["subnet-1"], "labels": {"role": "batch", "team": "data"},
            "taints": [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"},
                       {"key": "spot", "effect": "PreferNoSchedule"}]})
        self.script = tmp / "user-data.sh"
        self.script.write_text(base64.b64decode(user_data(CLUSTER, pool, kubelet, hook)).decode())

    def state(self) -> dict:
        return json.loads((self.rig / "state.json").read_text())

    def write_state(self, state: dict) -> None:
        (self.rig / "state.json").write_text(json.dumps(state))

    def update(self, **changes) -> None:
        self.write_state({**self.state(), **changes})

    def calls(self) -> list[dict]:
        log = self.rig / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def run(self, **env: str) -> subprocess.CompletedProcess:
        base = {"PATH": str(self.bin), "HOME": str(self.tmp), "LC_ALL": "C", "KUBEHOP_ROOT": str(self.root),
                "KUBEHOP_RUN_DIR": str(self.run_dir), "KUBEHOP_SSM_WAIT": "0"}
        result = subprocess.run([str(self.bin / "bash"), str(self.script)], env={**base, **env}, capture_output=True,
                                text=True, timeout=60, cwd=self.tmp)
        # Whatever happened: the join file (it holds the token) is gone, and the token was in no argv or output.
        assert list(self.run_dir.iterdir()) == [], "the join configuration was left behind"
        for call in self.calls():
            assert TOKEN not in " ".join(call["argv"]), call
        assert TOKEN not in result.stdout + result.stderr
        return result


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return Box(tmp_path)


def test_joins_with_the_parameters_from_ssm(box: Box):
    result = box.run()
    assert result.returncode == 0, result.stderr
    assert f"kubehop: joined the cluster through {ENDPOINT}" in result.stdout
    calls = box.calls()
    # IMDSv2: a session token first, every metadata read with it.
    assert [c["cmd"] for c in calls] == ["curl", "curl", "curl", "aws", "aws", "aws", "kubeadm"]
    assert calls[0]["argv"][calls[0]["argv"].index("-X") + 1] == "PUT"
    assert all(f"X-aws-ec2-metadata-token: {IMDS_TOKEN}" in c["argv"] for c in calls[1:3])
    for call, name in zip(calls[3:6], ("api-endpoint", "join-token", "ca-cert-hash"), strict=False):
        assert call["argv"] == ["ssm", "get-parameter", "--region", REGION, "--with-decryption", "--name",
                                f"/kubehop/{CLUSTER}/{name}", "--query", "Parameter.Value", "--output", "text"]
    assert calls[6]["argv"] == ["join", "--config", str(box.run_dir / "kubehop-join.yaml")]

    joined = box.state()["joined"]
    assert joined["mode"] == "0o600"
    config = yaml.safe_load(joined["config"])
    assert config["kind"] == "JoinConfiguration" and config["apiVersion"] == "kubeadm.k8s.io/v1beta3"
    assert config["discovery"]["bootstrapToken"] == {"apiServerEndpoint": ENDPOINT, "token": TOKEN,
                                                     "caCertHashes": [CA_HASH]}
    assert config["nodeRegistration"] == {"name": HOSTNAME, "kubeletExtraArgs": {
        "cloud-provider": "external",
        "node-labels": "kubehop.io/pool=batch,role=batch,team=data",
        "register-with-taints": "dedicated=batch:NoSchedule,spot=:PreferNoSchedule"}}


def test_an_already_joined_node_does_nothing(box: Box):
    (box.root / "etc/kubernetes").mkdir(parents=True)
    (box.root / "etc/kubernetes/kubelet.conf").write_text("apiVersion: v1\n")
    result = box.run()
    assert result.returncode == 0 and "kubehop: already joined" in result.stdout
    assert box.calls() == []


@pytest.mark.parametrize("name", ["api-endpoint", "join-token", "ca-cert-hash"])
@pytest.mark.parametrize("how", ["empty", "None", "missing"])
def test_an_empty_or_missing_parameter_fails_before_kubeadm_join(box: Box, name: str, how: str):
    params = dict(PARAMS)
    if how == "missing":
        del params[f"/kubehop/{CLUSTER}/{name}"]
    else:  # `--output text` prints None for a null value
        params[f"/kubehop/{CLUSTER}/{name}"] = "" if how == "empty" else "None"
    box.update(params=params)
    result = box.run(KUBEHOP_SSM_TRIES="3")
    assert result.returncode == 1
    why = "aws ssm get-parameter failed (its error is above)" if how == "missing" else "it is empty"
    assert (f"kubehop-join: FAILED: cannot read SSM parameter /kubehop/{CLUSTER}/{name} in {REGION} after 3 tries: "
            f"{why}; check that the control-plane step join-token has run") in result.stderr
    assert "ssm:GetParameter" in result.stderr
    if how == "missing":
        assert "ParameterNotFound" in result.stderr
    assert result.stderr.count(f"cannot read /kubehop/{CLUSTER}/{name} yet") == 2
    calls = box.calls()
    assert "kubeadm" not in [c["cmd"] for c in calls] and "joined" not in box.state()
    assert sum(f"/kubehop/{CLUSTER}/{name}" in c["argv"] for c in calls) == 3


def test_a_transient_aws_failure_is_retried(box: Box):
    """At boot the instance profile's credentials may not work yet: a few failed reads are retried."""
    box.update(fail_times={f"/kubehop/{CLUSTER}/join-token": 2})
    result = box.run()
    assert result.returncode == 0, result.stderr
    assert "try 1 of 8" in result.stderr and "try 2 of 8" in result.stderr and "AccessDeniedException" in result.stderr
    assert yaml.safe_load(box.state()["joined"]["config"])["discovery"]["bootstrapToken"]["token"] == TOKEN


@pytest.mark.parametrize(("name", "value", "message"), [
    ("join-token", "not-a-token", "does not hold a kubeadm bootstrap token"),
    ("ca-cert-hash", "md5:abc", "holds 'md5:abc', not sha256:<hex>"),
    ("api-endpoint", "https://10.0.0.10:6443", "not host:port"),
])
def test_a_malformed_parameter_fails_before_kubeadm_join(box: Box, name: str, value: str, message: str):
    box.update(params={**PARAMS, f"/kubehop/{CLUSTER}/{name}": value})
    result = box.run()
    assert result.returncode == 1 and message in result.stderr and "kubehop-join: FAILED:" in result.stderr
    assert "kubeadm" not in [c["cmd"] for c in box.calls()]


def test_a_failed_join_exits_nonzero_and_removes_the_join_file(box: Box):
    box.update(join_rc=1)
    result = box.run()
    assert result.returncode == 1
    assert f"kubehop-join: FAILED: kubeadm join to {ENDPOINT} exited 1" in result.stderr
    assert "joined" in box.state()  # kubeadm saw the file; Box.run checked it is gone


def test_without_an_imdsv2_session_nothing_is_read(box: Box):
    box.update(imds_v1_only=True)
    result = box.run()
    assert result.returncode == 1
    assert "kubehop-join: FAILED: no IMDSv2 token from http://169.254.169.254/latest/api/token" in result.stderr
    assert [c["cmd"] for c in box.calls()] == ["curl"]


def test_the_filled_script_is_small_enough_for_user_data(box: Box):
    # EC2 limits user data to 16 KB before base64.
    assert len(box.script.read_bytes()) < 16 * 1024
    text = box.script.read_text()
    assert "_B64__" not in text
    assert f"decode CLUSTER '{base64.b64encode(CLUSTER.encode()).decode()}'" in text
