"""A kubeadm control plane of N fake masters around one real loopback API server.

The cluster (nodes, the kube-apiserver mirror pods, the kubeadm-config and
kubelet-config ConfigMaps, the kube-proxy DaemonSet, the CoreDNS Deployment)
lives in a `KubeAPI` (tests/helpers/kube_api.py) that the REAL kubectl talks to.
Each master is a directory: a KUBEHOP_ROOT tree with its four static pod
manifests and kubelet config, the stand-ins' state (installed packages, holds,
apt index) and a PATH of stand-ins: kubeadm, systemd-run, systemctl and a
kubectl front (tests/standins/kubeadm_standin.py: `version --client` from the
package, the rest exec'd to the real kubectl) and apt-get, apt-mark, kubelet,
curl, gpg (tests/standins/cp_standin.py), plus real coreutils.

Steps run with the text and environment the plan recorded for them
(`run_step`), or a script by name (`run`).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from components.steps import script as sent_text
from kubehop import kubeadm_upgrade
from tests.helpers.kube_api import KubeAPI, kubectl_binary

TESTS = Path(__file__).resolve().parent.parent
STANDINS = TESTS / "standins"
OWN_TOOLS = ("kubeadm", "systemd-run", "systemctl", "kubectl")
BASE_TOOLS = ("apt-get", "apt-cache", "apt-mark", "kubelet", "curl", "gpg", "containerd")
REAL_TOOLS = ("bash", "sh", "env", "timeout", "mktemp", "rm", "mv", "cp", "chmod", "mkdir", "cat", "tee", "grep",
              "sed", "awk", "sort", "head", "tail", "tr", "cut", "paste", "find", "stat", "sync", "sleep", "dirname",
              "date", "printf", "true", "id", "basename", "readlink", "wc", "ls", "printenv")
HOST_KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
MINORS = ("1.26", "1.27", "1.28", "1.29", "1.30")
PATCHES = {"1.26": "1.26.15", "1.27": "1.27.16", "1.28": "1.28.15", "1.29": "1.29.15", "1.30": "1.30.14"}
MANIFEST = """apiVersion: v1
kind: Pod
metadata:
  name: {component}
  namespace: kube-system
spec:
  containers:
  - command:
    - {component}
    image: registry.k8s.io/{component}:{version}
    name: {component}
"""
# (tool, regex on the argv) of every call a control-plane step makes that changes something:
# the one list both control-plane rigs judge "nothing changed" by.
MUTATING = (("apt-get", r"\b(install|update|upgrade|remove)\b"), ("apt-mark", r"^(hold|unhold)\b"),
            ("kubeadm", r"^upgrade (apply|node)\b"), ("kubeadm", r"^token (create|delete)\b"), ("systemd-run", ""),
            ("kubectl", r"\b(drain|uncordon|cordon|delete|patch|annotate)\b"),
            ("systemctl", r"\b(restart|daemon-reload|start|stop|enable|disable)\b"), ("curl", ""), ("gpg", ""),
            ("aws", r"^s3 (cp|mv|rm)\b"), ("aws", r"^ssm put-parameter\b"), ("etcdctl", r"snapshot save"))


def is_mutating(call: dict) -> bool:
    joined = " ".join(call["argv"])
    return any(call["cmd"] == tool and re.search(rx, joined) for tool, rx in MUTATING)


@dataclass
class Run:
    node: str
    name: str
    rc: int
    out: str
    err: str
    calls: list[dict] = field(default_factory=list)

    @property
    def mutating(self) -> list[str]:
        return [" ".join([c["cmd"], *c["argv"]]) for c in self.calls if is_mutating(c)]

    @property
    def skipped(self) -> bool:
        """Found its work done: said so, or (the read-only node preflight) passed again."""
        if self.name.endswith("-node-preflight"):
            return self.rc == 0 and "(nothing was changed)" in self.out and self.mutating == []
        return self.rc == 0 and "already done (" in self.out and "skipping" in self.out

    def __str__(self) -> str:
        return f"{self.node} {self.name} rc={self.rc}\n{self.out}{self.err}"


class Master:
    """One fake master: its root tree, stand-in state and PATH."""

    def __init__(self, cluster: "Cluster", name: str, version: str):
        self.cluster, self.name = cluster, name
        self.dir = cluster.dir / name
        self.root = self.dir / "root"
        self.bin, self.realbin, self.scratch = self.dir / "bin", self.dir / "realbin", self.dir / "scratch"
        for d in (self.bin, self.realbin, self.scratch, self.root / "etc/kubernetes/manifests",
                  self.root / "etc/apt/sources.list.d", self.root / "etc/apt/keyrings", self.root / "var/lib/kubelet"):
            d.mkdir(parents=True, exist_ok=True)
        for component in kubeadm_upgrade.MANIFEST_ORDER:
            image_version = "3.5.9-0" if component == "etcd" else f"v{version}"
            (self.root / f"etc/kubernetes/manifests/{component}.yaml").write_text(
                MANIFEST.format(component=component, version=image_version))
        self.kubelet_config.write_text("kind: KubeletConfiguration\n")
        minor = version.rsplit(".", 1)[0]
        (self.root / "etc/apt/sources.list.d/kubernetes.list").write_text(
            f"deb [signed-by={HOST_KEYRING}] https://pkgs.k8s.io/core:/stable:/v{minor}/deb/ /\n")
        (self.root / HOST_KEYRING.lstrip("/")).write_bytes(b"old-binary-keyring")
        self.log = self.dir / "calls.jsonl"
        self.log.touch()
        deb = f"{version}-1.1"
        self.write_state({
            "root": str(self.root), "node_name": name, "api": cluster.api.url, "real_kubectl": kubectl_binary(),
            "packages": {"kubeadm": deb, "kubelet": deb, "kubectl": deb},
            "holds": ["kubeadm", "kubectl", "kubelet"],
            "repo_versions": {m: {p: [f"{PATCHES[m]}-1.1"] for p in ("kubeadm", "kubelet", "kubectl")} for m in MINORS},
            "apt_index_minor": minor, "kubelet_running": version, "kubelet_active": True, "fail": [],
        })
        for tool in OWN_TOOLS + BASE_TOOLS:
            program = STANDINS / ("kubeadm_standin.py" if tool in OWN_TOOLS else "cp_standin.py")
            wrapper = self.bin / tool
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S -E "{program}" "{self.dir}" {tool} "$@"\n')
            wrapper.chmod(0o755)
        for tool in REAL_TOOLS:
            real = shutil.which(tool)
            assert real, f"the test needs the real '{tool}' on PATH"
            (self.realbin / tool).symlink_to(real)
        past = time.time() - 3600  # the manifests and kubelet config of the running version: an hour old
        for path in [*(self.root / "etc/kubernetes/manifests").iterdir(), self.kubelet_config]:
            os.utime(path, (past, past))

    @property
    def kubelet_config(self) -> Path:
        return self.root / "var/lib/kubelet/config.yaml"

    def manifest_version(self, component: str) -> str:
        text = (self.root / f"etc/kubernetes/manifests/{component}.yaml").read_text()
        return text.split(f"{component}:", 1)[1].split()[0]

    def state(self) -> dict:
        return json.loads((self.dir / "state.json").read_text())

    def write_state(self, state: dict) -> None:
        (self.dir / "state.json").write_text(json.dumps(state, indent=1, sort_keys=True))

    def update(self, **changes) -> None:
        state = self.state()
        state.update(changes)
        self.write_state(state)

    def env(self, **extra: str) -> dict[str, str]:
        env = {"PATH": f"{self.bin}:{self.realbin}", "HOME": str(self.dir), "TMPDIR": str(self.scratch), "LC_ALL": "C",
               "KUBECACHEDIR": str(self.dir / "kube-cache"), "NO_PROXY": "127.0.0.1",
               "KUBEHOP_ROOT": str(self.root), "KUBEHOP_KUBECONFIG": str(self.cluster.api.kubeconfig),
               "KUBEHOP_POLL_INTERVAL": "0.2"}
        env.update(extra)
        return env

    def run_text(self, name: str, text: str, env: dict[str, str], timeout: float = 60) -> Run:
        start = len(self.log.read_text().splitlines())
        proc = subprocess.run([str(self.realbin / "bash"), "-s"], input=text, capture_output=True, text=True,
                              env=self.env(**env), timeout=timeout, cwd=self.dir)
        calls = [json.loads(line) for line in self.log.read_text().splitlines()[start:]]
        return Run(self.name, name, proc.returncode, proc.stdout, proc.stderr, calls)


class Cluster:
    """N masters at `version` (e.g. "1.26.15") in one loopback API server."""

    def __init__(self, api: KubeAPI, workdir: Path, names: list[str], version: str):
        self.api, self.dir = api, Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        v = f"v{version}"
        objects = [
            {"kind": "ConfigMap", "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
             "data": {"ClusterConfiguration": f"apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\n"
                                              f"kubernetesVersion: {v}\ncontrolPlaneEndpoint: 10.0.0.10:6443\n"}},
            {"kind": "ConfigMap", "metadata": {"name": "kube-proxy", "namespace": "kube-system"}, "data": {}},
            {"kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": "kube-system"}, "data": {}},
            {"kind": "DaemonSet", "apiVersion": "apps/v1", "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
             "spec": {"template": {"spec": {"containers": [{"name": "kube-proxy", "image": f"registry.k8s.io/kube-proxy:{v}"}]}}}},
            {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "coredns", "namespace": "kube-system"},
             "spec": {"replicas": 2, "template": {"spec": {"containers": [
                 {"name": "coredns", "image": "registry.k8s.io/coredns/coredns:"
                                              + kubeadm_upgrade.kubeadm_minor(version.rsplit(".", 1)[0]).coredns}]}}}},
        ]
        for name in names:
            objects.append({"kind": "Node", "metadata": {"name": name, "labels": {"node-role.kubernetes.io/control-plane": ""}},
                            "spec": {}, "status": {"nodeInfo": {"kubeletVersion": v},
                                                   "conditions": [{"type": "Ready", "status": "True"}]}})
            for component in kubeadm_upgrade.VERSIONED_MANIFESTS:
                objects.append({"kind": "Pod", "metadata": {
                    "name": f"{component}-{name}", "namespace": "kube-system",
                    "labels": {"component": component, "tier": "control-plane"},
                    "annotations": {"kubernetes.io/config.mirror": "0" * 32}},
                    "spec": {"nodeName": name, "containers": [{"name": component, "image": f"registry.k8s.io/{component}:{v}"}]}})
        api.load(*objects)
        api.on_read.append(_ready_when_due)
        self.masters = {name: Master(self, name, version) for name in names}

    # cluster facts ------------------------------------------------------
    def node(self, name: str) -> dict:
        return self.api.get("Node", name)

    def addon_images(self) -> tuple[str, str]:
        proxy = self.api.get("DaemonSet", "kube-proxy", "kube-system")["spec"]["template"]["spec"]["containers"][0]["image"]
        dns = self.api.get("Deployment", "coredns", "kube-system")["spec"]["template"]["spec"]["containers"][0]["image"]
        return proxy.rsplit(":", 1)[1], dns.rsplit(":", 1)[1]

    def cluster_version(self) -> str:
        text = self.api.get("ConfigMap", "kubeadm-config", "kube-system")["data"]["ClusterConfiguration"]
        return next(line.split()[1] for line in text.splitlines() if line.startswith("kubernetesVersion:"))

    # running ------------------------------------------------------------
    def run_step(self, step: dict, timeout: float = 60) -> Run:
        """A recorded plan step: its `sudo env K=V ... bash -s` environment and stdin."""
        words = shlex.split(step["inputs"]["create"])
        assert words[:2] == ["sudo", "env"] and words[-2:] == ["bash", "-s"], words
        env = dict(w.split("=", 1) for w in words[2:-2])
        return self.masters[step["target"]].run_text(step["id"], step["inputs"]["stdin"], env, timeout)

    def run(self, node: str, script: str, timeout: float = 60, **env: str) -> Run:
        env.setdefault("KUBEHOP_NODE", node)
        return self.masters[node].run_text(script, sent_text(f"control_plane/{script}"), env, timeout)


def _ready_when_due(api: KubeAPI, res, obj: dict) -> None:
    """The kubelet's part after a restart: Ready once the stand-in's moment has passed."""
    annotations = obj.get("metadata", {}).get("annotations") or {}
    due = annotations.get("standin.test/ready-at")
    if res.kind == "Node" and due and float(due) <= time.time():
        for condition in obj["status"]["conditions"]:
            if condition["type"] == "Ready":
                condition["status"] = "True"
        annotations.pop("standin.test/ready-at")
