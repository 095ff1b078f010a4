"""The control-plane step scripts (components/scripts/control_plane/*.sh), run for real.

Each script is fed to `bash -s` on stdin exactly as `sudo env K=V ... bash -s` gets
it on a master (lib.sh, the helpers the steps share, then the step: the text
components.steps.script() builds), with a PATH holding only recording stand-ins (tests/standins/cp_standin.py)
for kubeadm, kubectl, kubelet, apt-get, apt-mark, systemctl, curl, gpg and aws,
plus symlinks to the few real utilities the scripts may use (openssl among them:
join_token.sh hashes a real CA certificate made here). A tool the scripts
should not call is simply not there. etcd_snapshot.sh runs against real etcd
servers: tests/scripts/test_cp_snapshot.py.

For every script: the first run acts (exact commands), the second is a no-op
that says "skipping", an injected failure stops it with a clear message and a
non-zero exit, and missing required input exits 2 naming the variable.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from components.steps import EMBEDDED
from components.steps import embedded as embed
from components.steps import script as sent_text
from tests.helpers.cp_cluster import is_mutating

TESTS = Path(__file__).resolve().parents[1]
SCRIPTS = TESTS.parent / "components" / "scripts" / "control_plane"
STANDIN = TESTS / "standins" / "cp_standin.py"

OLD, NEW = "1.26.15", "1.27.16"
NEW_DEB = f"{NEW}-1.1"
HOP = f"{OLD}-to-{NEW}"
REPO_URL = "https://pkgs.k8s.io/core:/stable:/v1.27/deb/"
KEY_URL = REPO_URL + "Release.key"
OLD_REPO_URL = "https://pkgs.k8s.io/core:/stable:/v1.26/deb/"
HOST_KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
APT_OPTS = "-o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
KUBELET_JSONPATH = "jsonpath={.status.nodeInfo.kubeletVersion}"
NODE_JSONPATH = ('jsonpath={.spec.unschedulable}|{.status.conditions[?(@.type=="Ready")].status}'
                 '|{.status.nodeInfo.kubeletVersion}|{.metadata.annotations}')
CORDON_JSONPATH = "jsonpath={.spec.unschedulable}|{.metadata.annotations}"
CORDON = ('kubectl patch node master0 --type=merge -p '
          '{"metadata":{"annotations":{"kubehop.io/cordoned":"v1.27.16"}},"spec":{"unschedulable":true}}')
UNCORDON = ('kubectl patch node master0 --type=merge -p '
            '{"metadata":{"annotations":{"kubehop.io/cordoned":null}},"spec":{"unschedulable":null}}')
KUBEHOP_CORDON = {"kubehop.io/cordoned": "v1.27.16"}

STANDIN_TOOLS = ("kubeadm", "kubectl", "kubelet", "apt-get", "apt-cache", "apt-mark", "systemctl", "curl", "gpg", "aws",
                 "etcdctl", "systemd-run", "containerd")
DETACHING = TESTS / "standins" / "kubeadm_standin.py"  # systemd-run (transient services)
# The only real programs on the scripts' PATH besides the stand-ins (dirname: a
# step run from its file finds lib.sh beside it).
REAL_TOOLS = ("bash", "env", "timeout", "mktemp", "rm", "mv", "cp", "chmod", "mkdir", "cat", "tee", "grep",
              "sed", "awk", "sort", "head", "tail", "tr", "cut", "paste", "find", "stat", "sync", "sleep", "dirname",
              "date", "openssl", "base64", "cmp")

SCRIPT_NAMES = ("etcd_snapshot.sh", "package_repo.sh", "kubeadm_install.sh", "kubeadm_plan.sh", "kubeadm_apply.sh",
                "kubeadm_node.sh", "drain.sh", "kubelet_upgrade.sh", "uncordon.sh", "join_token.sh", "join_token_timer.sh",
                "node_preflight.sh")
LIB = "lib.sh"  # not a step: the helpers the steps share, sent ahead of each of them
# How a step loads lib.sh when it is run from its file: not at all when lib.sh came first on stdin.
LIB_GUARD = ('# shellcheck source-path=SCRIPTDIR source=lib.sh',
             'if ! declare -F kubehop_lib_loaded >/dev/null; then source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"; fi')

# Secrets in an argv: keys, passwords, a token handed over as --token/token=, a value shaped like a
# kubeadm bootstrap token (abcdef.0123456789abcdef) anywhere, an AWS access key id. The word "token"
# alone is not one: `kubeadm token create` and the parameter /kubehop/<cluster>/join-token are names.
SECRET_LOOKING = re.compile(r"PRIVATE KEY|BEGIN [A-Z ]*KEY|password|passwd|secret|--token\b|token[=:]|"
                            r"(?-i:\b[a-z0-9]{6}\.[a-z0-9]{16}\b)|AKIA[0-9A-Z]{16}", re.I)


# --------------------------------------------------------------------------- rig
@dataclass
class Result:
    rc: int
    out: str
    err: str
    calls: list[dict] = field(default_factory=list)

    @property
    def commands(self) -> list[str]:
        return [render(c) for c in self.calls]

    @property
    def mutating(self) -> list[str]:
        return [render(c) for c in self.calls if is_mutating(c)]


def render(call: dict) -> str:
    """`tool argv...` with kubectl's global flags (asserted elsewhere) left out."""
    argv, shown, skip = call["argv"], [], False
    for _i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if call["cmd"] == "kubectl" and a == "--kubeconfig":
            skip = True
            continue
        if call["cmd"] == "kubectl" and a.startswith("--request-timeout"):
            continue
        shown.append(a)
    return " ".join([call["cmd"], *shown])


def header_comment(lines: list[str]) -> list[str]:
    """The comment lines right after a script's shebang."""
    header = []
    for line in lines[1:]:
        if not line.startswith("#"):
            break
        header.append(line)
    return header


MANIFEST = """apiVersion: v1
kind: Pod
metadata:
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-apiserver
    - --etcd-servers=https://127.0.0.1:2379
    image: registry.k8s.io/kube-apiserver:v{version}
    imagePullPolicy: IfNotPresent
    name: kube-apiserver
"""


class Rig:
    """A fake master: a KUBEHOP_ROOT tree, the stand-ins' state, and a PATH."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.dir = tmp / "rig"
        self.root = tmp / "root"
        self.bin = self.dir / "bin"
        self.realbin = self.dir / "realbin"
        self.scratch = tmp / "scratch"
        for d in (self.bin, self.realbin, self.scratch, self.root / "etc/kubernetes/manifests",
                  self.root / "etc/apt/sources.list.d", self.root / "etc/apt/keyrings"):
            d.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = str(tmp / "admin.conf")
        self.manifest = self.root / "etc/kubernetes/manifests/kube-apiserver.yaml"
        self.manifest.write_text(MANIFEST.format(version=OLD))
        self.list = self.root / "etc/apt/sources.list.d/kubernetes.list"
        self.list.write_text(f"deb [signed-by={HOST_KEYRING}] {OLD_REPO_URL} /\n")
        self.keyring = self.root / HOST_KEYRING.lstrip("/")
        self.keyring.write_bytes(b"old-binary-keyring")
        self.log = self.dir / "calls.jsonl"
        self.log.touch()
        old_deb = f"{OLD}-1.1"
        self.write_state({
            "root": str(self.root),
            "packages": {"kubeadm": old_deb, "kubelet": old_deb, "kubectl": old_deb},
            "holds": ["kubeadm", "kubectl", "kubelet"],
            "repo_versions": {m: {p: vs for p in ("kubeadm", "kubelet", "kubectl")} for m, vs in (
                ("1.26", ["1.26.14-1.1", old_deb]), ("1.27", ["1.27.15-1.1", NEW_DEB]))},
            "apt_index_minor": "1.26",
            "cluster_version": "v" + OLD,
            "kubelet_running": OLD,
            "kubelet_active": True,
            "node": {"name": "master0", "unschedulable": False, "ready": True, "ready_in": 0},
            "ready_after_restart": 1,
            "drain": "ok",
            "s3": {},
            "api_server": "https://10.0.0.10:6443",  # the server of the kubeconfig (kubectl config view)
            "tokens": [],  # kubeadm bootstrap tokens
            "ssm": {},  # SSM parameters: name -> {"Value", "Type", "Version"}
            "fail": [],
        })
        for tool in STANDIN_TOOLS:
            wrapper = self.bin / tool
            program = DETACHING if tool == "systemd-run" else STANDIN
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S -E "{program}" "{self.dir}" {tool} "$@"\n')
            wrapper.chmod(0o755)
        for tool in REAL_TOOLS:
            real = shutil.which(tool)
            assert real, f"the test needs the real '{tool}' on PATH"
            (self.realbin / tool).symlink_to(real)

    # state ---------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self.dir / "state.json"

    def state(self) -> dict:
        return json.loads(self.state_path.read_text())

    def write_state(self, state: dict) -> None:
        self.state_path.write_text(json.dumps(state, indent=1, sort_keys=True))

    def update(self, **changes) -> None:
        state = self.state()
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(state.get(key), dict):
                state[key].update(value)
            else:
                state[key] = value
        self.write_state(state)

    def fail(self, cmd: str, match: str, rc: int = 1, stderr: str | None = None, sleep: float = 0,
             times: int | None = None) -> None:
        """Make matching calls fail: every one, or only the first `times`."""
        state = self.state()
        state["fail"].append({"cmd": cmd, "match": match, "rc": rc, "sleep": sleep, "times": times,
                              "stderr": stderr or f"{cmd}: injected failure"})
        self.write_state(state)

    def installed(self, kubeadm: str = NEW, kubelet: str = OLD, kubectl: str = OLD, index: str = "1.27") -> None:
        self.update(packages={"kubeadm": f"{kubeadm}-1.1", "kubelet": f"{kubelet}-1.1", "kubectl": f"{kubectl}-1.1"},
                    apt_index_minor=index)

    # running -------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.bin}:{self.realbin}",
            "HOME": str(self.tmp),
            "TMPDIR": str(self.scratch),
            "LC_ALL": "C",
            "KUBEHOP_NODE": "master0",
            "KUBEHOP_VERSION": NEW,
            "KUBEHOP_MINOR": "1.27",
            "KUBEHOP_ROOT": str(self.root),
            "KUBEHOP_KUBECONFIG": self.kubeconfig,
        }
        env.update(extra)
        return env

    def run(self, script: str, drop: tuple[str, ...] = (), timeout: float = 30, from_file: bool = False,
            **extra: str) -> Result:
        """`bash -s` with the text production sends on stdin; from_file: `bash <the script's file>`."""
        env = {k: v for k, v in self.env(**extra).items() if k not in drop}
        start = len(self.log.read_text().splitlines())
        if from_file:
            args, stdin = [str(self.realbin / "bash"), str(SCRIPTS / script)], ""
        else:
            args, stdin = [str(self.realbin / "bash"), "-s"], sent_text(f"control_plane/{script}")
        # cwd holds no lib.sh: a step that sourced it while it came on stdin would fail.
        proc = subprocess.run(args, input=stdin, capture_output=True, text=True, env=env, timeout=timeout,
                              cwd=self.tmp)
        calls = [json.loads(line) for line in self.log.read_text().splitlines()[start:]]
        result = Result(proc.returncode, proc.stdout, proc.stderr, calls)
        check_every_run(self, script, result)
        return result


def check_every_run(rig: Rig, script: str, result: Result) -> None:
    """What must hold for any run of any script."""
    for call in result.calls:
        # `bash -s` reads the script from stdin: a command that read stdin would eat the script.
        assert call["stdin_bytes"] == 0 or call["cmd"] == "gpg", f"{render(call)} read the script's stdin"
        joined = " ".join(call["argv"])
        assert not SECRET_LOOKING.search(joined), f"secret-looking argv: {render(call)}"
        if call["cmd"] == "kubectl" and call["argv"][:1] != ["version"]:
            assert call["argv"][:2] == ["--kubeconfig", rig.kubeconfig], f"kubectl without --kubeconfig: {call['argv']}"
    for line in result.err.splitlines():
        if "FAILED" in line and line.startswith("kubehop:"):
            assert re.match(r"kubehop: [a-z-]+ on [a-z0-9.-]+: FAILED: .+; .+", line), line
    # Nothing left behind in TMPDIR or beside the files the scripts replace.
    assert list(rig.scratch.iterdir()) == [], f"{script} left temp files: {list(rig.scratch.iterdir())}"
    for d in (rig.list.parent, rig.keyring.parent):
        assert not [p.name for p in d.iterdir() if ".kubehop" in p.name], f"{script} left temp files in {d}"


def skipped(result: Result, step: str, node: str = "master0") -> bool:
    return result.rc == 0 and f"kubehop: {step} on {node}: already done (" in result.out and "skipping" in result.out


# --------------------------------------------------------------------------- static checks
FUNCTION = re.compile(r"^([a-z_][a-z0-9_]*)\(\) \{.*$", re.M)


def functions(text: str) -> dict[str, str]:
    """The top-level shell functions in `text`: name -> definition (one line, or up to a lone `}`)."""
    found = {}
    for m in FUNCTION.finditer(text):
        end = m.end() if m.group(0).rstrip().endswith("}") else text.index("\n}\n", m.start()) + 2
        found[m.group(1)] = text[m.start():end]
    return found


LIB_FUNCTIONS = functions((SCRIPTS / LIB).read_text())


def lib_code_used(text: str) -> str:
    """The definitions of the lib.sh functions `text` calls, directly or through each other."""
    used: set[str] = set()
    todo = [text]
    while todo:
        for name in set(re.findall(r"\b[a-z_][a-z0-9_]*\b", todo.pop())) & LIB_FUNCTIONS.keys() - used:
            used.add(name)
            todo.append(LIB_FUNCTIONS[name])
    return "\n".join(LIB_FUNCTIONS[name] for name in sorted(used))


def test_every_expected_script_exists_and_nothing_else():
    assert sorted(p.name for p in SCRIPTS.glob("*.sh")) == sorted([*SCRIPT_NAMES, LIB])


def test_shellcheck_is_clean():
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (Debian/Ubuntu package 'shellcheck'); CI installs it"
    scripts = sorted(str(p) for p in SCRIPTS.glob("*.sh"))
    proc = subprocess.run([shellcheck, "-x", *scripts], capture_output=True, text=True, cwd=SCRIPTS)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_script_shape(name: str):
    text = (SCRIPTS / name).read_text()
    lines = text.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    header = header_comment(lines)
    assert lines[len(header) + 1] == "set -euo pipefail", "set -euo pipefail must follow the header comment"
    # Self-contained once sent: lib.sh comes ahead of it on stdin. Only when run from
    # its file does it source lib.sh, its one and only source, right after the set line.
    assert not re.search(r"^\s*(source|\.)\s", text, re.M)
    assert tuple(lines[len(header) + 2:len(header) + 4]) == LIB_GUARD, "the lib.sh guard must follow set -euo pipefail"
    sourcing = [l for l in lines if not l.lstrip().startswith("#") and re.search(r"(^|[;&|]|then)\s*(source|\.)\s", l)]
    assert sourcing == [LIB_GUARD[1]], "lib.sh is the only file a step may source"
    # lib.sh's helpers live only there: a step redefining one would silently replace it.
    assert not functions(text).keys() & LIB_FUNCTIONS.keys()
    # Runs from main with stdin closed, so nothing can read the rest of the script.
    assert [l for l in lines if l.strip()][-1] == 'main "$@" </dev/null'
    # Every variable it reads, itself or through the lib.sh helpers it calls, is documented in the header.
    code = "\n".join(lines[len(header) + 1:])
    used = set(re.findall(r"\b((?:KUBEHOP|ETCDCTL)_[A-Z0-9_]+)\b", code + "\n" + lib_code_used(text)))
    used -= {"ETCDCTL_API"}
    undocumented = sorted(v for v in used if v not in "\n".join(header))
    assert not undocumented, f"{name} reads {undocumented} without documenting them in its header"
    # Every /etc or /var path can be moved under KUBEHOP_ROOT.
    # node paths named inside files the node reads (units, an EnvironmentFile), written under $ROOT by `wanted`
    allowed = ("/etc/kubernetes/admin.conf}", "host_keyring=/etc/apt/keyrings/", "/etc/kubernetes/tmp",
               "ENV_FILE=/etc/kubehop/", 'wanted "/etc/systemd/system/')
    for number, line in enumerate(code.splitlines(), len(header) + 2):
        if line.lstrip().startswith("#") or any(a in line for a in allowed):
            continue
        for m in re.finditer(r"/(etc|var)/", line):
            assert line[:m.start()].endswith(("$ROOT", "${ROOT}")), \
                f"{name}:{number}: path not under KUBEHOP_ROOT: {line.strip()}"


def test_lib_shape():
    text = (SCRIPTS / LIB).read_text()
    lines = text.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    header = header_comment(lines)
    assert header and lines[len(header) + 1] == "set -euo pipefail", "set -euo pipefail must follow the header comment"
    # No side effects: besides `set`, only comments and function definitions at the top level.
    body = text.split("\n", len(header) + 2)[-1]
    for definition in functions(body).values():
        body = body.replace(definition, "", 1)
    stray = [l for l in body.splitlines() if l.strip() and not l.startswith("#")]
    assert stray == [], f"lib.sh may only define functions: {stray}"
    assert "kubehop_lib_loaded" in LIB_FUNCTIONS and "main" not in LIB_FUNCTIONS
    # Shared, not parked: every helper serves at least two steps.
    for helper in LIB_FUNCTIONS:
        users = [n for n in SCRIPT_NAMES if re.search(rf"\b{helper}\b", lib_code_used((SCRIPTS / n).read_text()))]
        assert len(users) >= 2, f"lib.sh's {helper} is used only by {users}: keep it in that step"
    # Every /etc or /var path can be moved under KUBEHOP_ROOT.
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("#") or "/etc/kubernetes/admin.conf}" in line:
            continue
        for m in re.finditer(r"/(etc|var)/", line):
            assert line[:m.start()].endswith(("$ROOT", "${ROOT}")), f"{LIB}:{number}: path not under KUBEHOP_ROOT"


def test_each_step_is_sent_after_lib_and_other_scripts_alone():
    lib = (SCRIPTS / LIB).read_text()
    for name in SCRIPT_NAMES:
        embedded = "".join(embed(f, inner) for f, inner in EMBEDDED.get(f"control_plane/{name}", {}).items())
        assert sent_text(f"control_plane/{name}") == lib + "\n" + embedded + (SCRIPTS / name).read_text()
    assert sent_text(f"control_plane/{LIB}") == lib
    user_data = SCRIPTS.parent / "node_pool" / "user_data.sh"
    assert sent_text("node_pool/user_data.sh") == user_data.read_text()


PREFLIGHT_ENV = {"KUBEHOP_CONTAINERD_MIN": "1.7.0 1.6.15", "KUBEHOP_PAUSE_IMAGE": "registry.k8s.io/pause:3.9"}
REQUIRED = {
    "package_repo.sh": ("KUBEHOP_NODE", "KUBEHOP_REPO_URL", "KUBEHOP_REPO_KEY_URL"),
    "join_token.sh": ("KUBEHOP_NODE", "KUBEHOP_CLUSTER", "KUBEHOP_REGION"),
    "join_token_timer.sh": ("KUBEHOP_NODE", "KUBEHOP_CLUSTER", "KUBEHOP_REGION", "KUBEHOP_TOKEN_TTL"),
    "node_preflight.sh": ("KUBEHOP_NODE", "KUBEHOP_VERSION", "KUBEHOP_CONTAINERD_MIN", "KUBEHOP_PAUSE_IMAGE"),
    **{name: ("KUBEHOP_NODE", "KUBEHOP_VERSION") for name in SCRIPT_NAMES
       if name not in ("package_repo.sh", "join_token.sh", "join_token_timer.sh", "node_preflight.sh")},
}


@pytest.mark.parametrize(("name", "var"), [(n, v) for n, vs in REQUIRED.items() for v in vs])
def test_missing_required_input_exits_2_naming_it(rig: Rig, name: str, var: str):
    extra = {"KUBEHOP_HOP": HOP, "KUBEHOP_REPO_URL": REPO_URL, "KUBEHOP_REPO_KEY_URL": KEY_URL,
             "KUBEHOP_TOKEN_TTL": "24h", **token_env(), **PREFLIGHT_ENV}
    result = rig.run(name, drop=(var,), **extra)
    assert result.rc == 2, result.err
    assert re.search(rf"^kubehop: {var} is required \(e\.g\. \S+", result.err, re.M), result.err
    assert result.calls == []


@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_run_from_its_file_a_step_sources_lib(rig: Rig, name: str):
    result = rig.run(name, drop=("KUBEHOP_NODE",), from_file=True, KUBEHOP_HOP=HOP, **repo_env())
    assert result.rc == 2 and re.search(r"^kubehop: KUBEHOP_NODE is required \(e\.g\. \S+", result.err, re.M), result.err
    assert result.calls == []


def test_a_step_run_from_its_file_does_its_work(rig: Rig):
    first = rig.run("drain.sh", from_file=True, KUBEHOP_DRAIN_TIMEOUT="5")
    assert first.rc == 0, first.err
    assert first.commands == [f"kubectl get node master0 -o {KUBELET_JSONPATH}",
                              f"kubectl get node master0 -o {CORDON_JSONPATH}", CORDON, DRAIN]
    assert "done: master0 drained" in first.out


@pytest.mark.parametrize(("name", "extra", "message"), [
    ("kubeadm_apply.sh", {"KUBEHOP_VERSION": "v1.27.16"}, "KUBEHOP_VERSION must be an exact version"),
    ("kubeadm_install.sh", {"KUBEHOP_VERSION": "1.27"}, "KUBEHOP_VERSION must be an exact version"),
    ("drain.sh", {"KUBEHOP_MINOR": "1.28"}, "KUBEHOP_MINOR=1.28 does not match KUBEHOP_VERSION=1.27.16"),
    ("drain.sh", {"KUBEHOP_NODE": "a" * 254}, "KUBEHOP_NODE must be a Kubernetes node name, a DNS-1123 subdomain of at most 253"),
    ("uncordon.sh", {"KUBEHOP_NODE": "ip-10-0-0-1.-x"}, "KUBEHOP_NODE must be a Kubernetes node name"),
    ("kubeadm_apply.sh", {"KUBEHOP_FORCE": "yes"}, "KUBEHOP_FORCE must be 0 or 1"),
    ("kubeadm_apply.sh", {"KUBEHOP_APPLY_TIMEOUT": "15m"}, "KUBEHOP_APPLY_TIMEOUT must be a whole number"),
    ("drain.sh", {"KUBEHOP_DRAIN_TIMEOUT": "0"}, "KUBEHOP_DRAIN_TIMEOUT must be a whole number"),
    ("uncordon.sh", {"KUBEHOP_POLL_INTERVAL": "0"}, "KUBEHOP_POLL_INTERVAL must be a positive number"),
    ("uncordon.sh", {"KUBEHOP_NODE": "master0; reboot"}, "KUBEHOP_NODE must be a Kubernetes node name"),
    ("kubeadm_node.sh", {"KUBEHOP_ROOT": "relative/dir"}, "KUBEHOP_ROOT must be an absolute path"),
    ("package_repo.sh", {"KUBEHOP_REPO_URL": OLD_REPO_URL, "KUBEHOP_REPO_KEY_URL": KEY_URL},
     "is not the repo of KUBEHOP_MINOR=1.27"),
    ("package_repo.sh", {"KUBEHOP_REPO_URL": "http://pkgs.k8s.io/core:/stable:/v1.27/deb/",
                         "KUBEHOP_REPO_KEY_URL": KEY_URL}, "KUBEHOP_REPO_URL must be an https:// URL"),
    ("etcd_snapshot.sh", {"KUBEHOP_SNAPSHOT_DIR": "/var/backups/../../etc"}, "KUBEHOP_SNAPSHOT_DIR must be"),
    ("etcd_snapshot.sh", {"ETCDCTL_ENDPOINTS": "https://10.0.0.1:2379,https://10.0.0.2:2379"},
     "ETCDCTL_ENDPOINTS must be exactly one"),
    ("etcd_snapshot.sh", {"KUBEHOP_SNAPSHOT_KMS_KEY_ID": "alias/backups"}, "KUBEHOP_SNAPSHOT_KMS_KEY_ID is set but"),
    ("etcd_snapshot.sh", {"KUBEHOP_SNAPSHOT_S3_URI": "s3://bkt/x", "KUBEHOP_SNAPSHOT_KMS_KEY_ID": "k; rm -rf /"},
     "KUBEHOP_SNAPSHOT_KMS_KEY_ID must be"),
    ("etcd_snapshot.sh", {"KUBEHOP_SNAPSHOT_KEEP": "0"}, "KUBEHOP_SNAPSHOT_KEEP must be"),
    ("join_token.sh", {"KUBEHOP_CLUSTER": "prod/b", "KUBEHOP_REGION": "eu-west-1"}, "KUBEHOP_CLUSTER must be"),
    ("join_token.sh", {"KUBEHOP_CLUSTER": "prod-b", "KUBEHOP_REGION": "Ireland"}, "KUBEHOP_REGION must be an AWS region"),
    *[("join_token.sh", {**{"KUBEHOP_CLUSTER": "prod-b", "KUBEHOP_REGION": "eu-west-1"}, "KUBEHOP_TOKEN_TTL": ttl},
       "KUBEHOP_TOKEN_TTL must be a duration of at least 1h") for ttl in ("30m", "0", "6 h", "1d", "-6h")],
])
def test_bad_input_exits_2(rig: Rig, name: str, extra: dict, message: str):
    result = rig.run(name, **extra)
    assert result.rc == 2 and message in result.err, result.err
    assert result.calls == []


# --------------------------------------------------------------------------- package_repo.sh
MADISON = [f"apt-cache madison {p}" for p in ("kubeadm", "kubelet", "kubectl")]


def repo_env() -> dict[str, str]:
    return {"KUBEHOP_REPO_URL": REPO_URL, "KUBEHOP_REPO_KEY_URL": KEY_URL}


def test_package_repo_switches_then_skips(rig: Rig):
    first = rig.run("package_repo.sh", **repo_env())
    assert first.rc == 0, first.err
    assert first.commands[0] == f"curl -fsSL --retry 3 --max-time 60 {KEY_URL}"
    assert first.commands[1].startswith(f"gpg --batch --yes --dearmor -o {rig.keyring}.kubehop.")
    assert first.commands[2:] == ["apt-get -o DPkg::Lock::Timeout=120 update", *MADISON]
    assert rig.list.read_text() == f"deb [signed-by={HOST_KEYRING}] {REPO_URL} /\n"
    assert rig.keyring.read_bytes().startswith(b"\x99\x01\rfake-binary-keyring")
    assert stat.S_IMODE(rig.keyring.stat().st_mode) == 0o644
    assert rig.state()["apt_index_minor"] == "1.27"
    assert "done: apt now uses" in first.out

    second = rig.run("package_repo.sh", **repo_env())
    assert skipped(second, "package-repo"), second.out + second.err
    assert second.commands == MADISON and second.mutating == []  # only apt's cached index is read


def test_package_repo_list_and_keyring_in_place_but_index_old_runs_the_update(rig: Rig):
    """A run that died during `apt-get update` (or a patch published since): the list is right, the index is not."""
    rig.run("package_repo.sh", **repo_env())
    rig.update(apt_index_unseen={"kubeadm": [NEW_DEB], "kubelet": [NEW_DEB]})
    result = rig.run("package_repo.sh", **repo_env())
    assert result.rc == 0, result.err
    assert "apt's index does not list kubeadm kubelet at" in result.out
    assert result.commands == [*MADISON, "apt-get -o DPkg::Lock::Timeout=120 update", *MADISON]
    assert not any(c.startswith(("curl", "gpg")) for c in result.commands), "list and key are kept"
    assert skipped(rig.run("package_repo.sh", **repo_env()), "package-repo")


def test_package_repo_version_the_repo_does_not_offer_fails_after_the_update(rig: Rig):
    rig.run("package_repo.sh", **repo_env())
    result = rig.run("package_repo.sh", **repo_env(), KUBEHOP_VERSION="1.27.99")
    assert result.rc == 1 and "still offers no kubeadm kubelet kubectl at 1.27.99" in result.err, result.err


@pytest.mark.parametrize("script, packages", [("kubeadm_install.sh", ["kubeadm"]),
                                              ("kubelet_upgrade.sh", ["kubelet", "kubectl"])])
def test_installed_at_the_version_but_not_held_is_held_again(rig: Rig, script: str, packages: list[str]):
    """An install that died between apt-get and apt-mark hold: the version is right, the hold is not."""
    rig.installed(kubeadm=NEW)
    first = rig.run(script)
    assert first.rc == 0, first.err
    rig.update(holds=[p for p in rig.state()["holds"] if p not in packages])
    result = rig.run(script)
    assert result.rc == 0, result.err
    assert f"{' '.join(packages)} at the right version but not held; holding" in result.out
    assert result.mutating == [f"apt-mark hold {' '.join(packages)}"]
    assert set(packages) <= set(rig.state()["holds"])
    assert rig.run(script).mutating == []


def test_package_repo_list_in_place_but_keyring_missing_fetches_the_key(rig: Rig):
    rig.run("package_repo.sh", **repo_env())
    rig.keyring.unlink()
    result = rig.run("package_repo.sh", **repo_env())
    assert result.rc == 0 and not skipped(result, "package-repo")
    assert result.commands[0].startswith("curl ") and rig.keyring.read_bytes().startswith(b"\x99\x01\rfake-binary-keyring")


def test_package_repo_warns_about_other_pkgs_k8s_io_sources(rig: Rig):
    other = rig.list.parent / "pkgs_k8s_io.list"
    other.write_text(f"deb {OLD_REPO_URL} /\n")
    result = rig.run("package_repo.sh", **repo_env())
    assert result.rc == 0
    assert "WARNING: other apt sources also point at pkgs.k8s.io" in result.err and str(other) in result.err


def test_package_repo_key_download_failure_changes_nothing(rig: Rig):
    before = rig.list.read_text()
    rig.fail("curl", "Release.key", rc=22, stderr="curl: (22) The requested URL returned error: 404")
    result = rig.run("package_repo.sh", **repo_env())
    assert result.rc == 1
    assert "FAILED: could not download the repo key from" in result.err and "nothing was changed" in result.err
    assert rig.list.read_text() == before and rig.keyring.read_bytes() == b"old-binary-keyring"
    assert not [c for c in result.commands if c.startswith("apt-get")]


@pytest.mark.parametrize("how", ["exit-code", "err-line"])
def test_package_repo_update_failure_puts_old_repo_back(rig: Rig, how: str):
    before = rig.list.read_text()
    if how == "exit-code":
        rig.fail("apt-get", "update", rc=100, stderr="E: The repository 'https://pkgs.k8s.io/core:/stable:/v1.27/deb  InRelease' is not signed.")
    else:  # apt-get update can exit 0 while one repo failed
        rig.fail("apt-get", "update", rc=0, stderr=f"Err:2 {REPO_URL.rstrip('/')}  InRelease\n  403  Forbidden [IP: 1.2.3.4 443]")
    result = rig.run("package_repo.sh", **repo_env())
    assert result.rc == 1
    assert "FAILED: apt-get update failed for" in result.err and "were put back" in result.err
    assert rig.list.read_text() == before and rig.keyring.read_bytes() == b"old-binary-keyring"
    # ...so the next run does not wrongly skip.
    rig.update(fail=[])
    assert rig.run("package_repo.sh", **repo_env()).commands[-4:] == ["apt-get -o DPkg::Lock::Timeout=120 update", *MADISON]


# --------------------------------------------------------------------------- kubeadm_install.sh
INSTALL_KUBEADM = f"apt-get {APT_OPTS} install -y --allow-change-held-packages kubeadm={NEW}-*"


def detached_apt(rig: Rig, step: str, install: str) -> list[str]:
    """The calls of one detached apt-get install (lib.sh apt_install_held): the look for an
    earlier run, then systemd-run starting apt-get by its absolute path, and apt-get itself."""
    unit, log = f"kubehop-apt-{step}", rig.root / f"var/log/kubehop/kubehop-apt-{step}.log"
    argv = install.split(" ", 1)[1]
    return [f"systemctl is-active --quiet {unit}.service",
            f"systemd-run --unit={unit} --collect --wait --quiet --service-type=exec --property=RuntimeMaxSec=600 "
            f"--property=StandardInput=null --property=StandardOutput=append:{log} --property=StandardError=append:{log} "
            f"-- {rig.realbin / 'env'} DEBIAN_FRONTEND=noninteractive {rig.bin / 'apt-get'} {argv}"]


def test_kubeadm_install_installs_holds_then_skips(rig: Rig):
    rig.update(apt_index_minor="1.27")
    first = rig.run("kubeadm_install.sh")
    assert first.rc == 0, first.err
    look, start = detached_apt(rig, "kubeadm-install", INSTALL_KUBEADM)
    assert first.commands == ["kubeadm version -o short", look, "apt-mark unhold kubeadm", start, INSTALL_KUBEADM,
                              "apt-mark hold kubeadm", "kubeadm version -o short"]
    state = rig.state()
    assert state["packages"]["kubeadm"] == NEW_DEB and "kubeadm" in state["holds"]
    assert f"done: kubeadm v{NEW} installed and held" in first.out

    second = rig.run("kubeadm_install.sh")
    assert skipped(second, "kubeadm-install") and f"kubeadm version -o short is v{NEW}" in second.out
    assert second.commands == ["kubeadm version -o short", "apt-mark showhold"]


def test_kubeadm_install_missing_version_fails_and_keeps_hold(rig: Rig):
    # package_repo has not switched the index to 1.27: apt cannot find 1.27.16.
    result = rig.run("kubeadm_install.sh")
    assert result.rc == 1
    assert f"FAILED: kubeadm {NEW} is not in the configured apt repo" in result.err
    assert "package-repo step" in result.err
    assert result.commands[-1] == "apt-mark hold kubeadm"
    assert "kubeadm" in rig.state()["holds"] and rig.state()["packages"]["kubeadm"].startswith(OLD)


def test_kubeadm_install_apt_failure(rig: Rig):
    rig.update(apt_index_minor="1.27")
    rig.fail("apt-get", "install", rc=100, stderr="E: Could not get lock /var/lib/dpkg/lock-frontend")
    result = rig.run("kubeadm_install.sh")
    assert result.rc == 1 and "exited 100" in result.err and "held again" in result.err
    assert "kubeadm" in rig.state()["holds"]


# --------------------------------------------------------------------------- kubeadm_plan.sh
def test_kubeadm_plan_runs_read_only_then_skips_once_applied(rig: Rig):
    rig.installed(kubeadm=NEW)
    first = rig.run("kubeadm_plan.sh", KUBEHOP_PLAN_TIMEOUT="10")
    assert first.rc == 0, first.err
    assert first.commands == ["kubeadm version -o short", f"kubeadm upgrade plan v{NEW} --kubeconfig {rig.kubeconfig}"]
    assert first.mutating == [] and f"Target version: v{NEW}" in first.out
    assert MANIFEST.format(version=OLD) == rig.manifest.read_text()

    rig.manifest.write_text(MANIFEST.format(version=NEW))
    second = rig.run("kubeadm_plan.sh")
    assert skipped(second, "kubeadm-plan") and second.calls == []


def test_kubeadm_plan_needs_the_new_kubeadm(rig: Rig):
    result = rig.run("kubeadm_plan.sh")
    assert result.rc == 1
    assert f"FAILED: kubeadm on this node is v{OLD}, not v{NEW}; run the kubeadm-install step first" in result.err
    assert result.commands == ["kubeadm version -o short"]


def test_kubeadm_plan_failure_is_reported(rig: Rig):
    rig.installed(kubeadm=NEW)
    rig.fail("kubeadm", "upgrade plan", rc=1, stderr="[upgrade/health] FATAL: etcd cluster is not healthy")
    result = rig.run("kubeadm_plan.sh")
    assert result.rc == 1 and "etcd cluster is not healthy" in result.err
    assert f"FAILED: kubeadm upgrade plan v{NEW} exited 1" in result.err and "nothing was changed" in result.err


# kubeadm_apply.sh and kubeadm_node.sh run against a cluster of masters with a real
# API server and a per-minor stand-in kubeadm: tests/scripts/test_cp_kubeadm_minor.py and
# tests/scripts/test_cp_partial_states.py.


# --------------------------------------------------------------------------- drain.sh
DRAIN = "kubectl drain master0 --ignore-daemonsets --delete-emptydir-data --timeout=5s"


def test_drain_drains_then_skips_once_kubelet_upgraded(rig: Rig):
    first = rig.run("drain.sh", KUBEHOP_DRAIN_TIMEOUT="5")
    assert first.rc == 0, first.err
    assert first.commands == [f"kubectl get node master0 -o {KUBELET_JSONPATH}",
                              f"kubectl get node master0 -o {CORDON_JSONPATH}", CORDON, DRAIN]
    assert rig.state()["node"]["unschedulable"] is True and rig.state()["node"]["annotations"] == KUBEHOP_CORDON
    assert "node/master0 drained" in first.out and "done: master0 drained" in first.out

    rig.update(kubelet_running=NEW)
    second = rig.run("drain.sh", KUBEHOP_DRAIN_TIMEOUT="5")
    assert skipped(second, "drain") and f"kubelet on master0 reports v{NEW}" in second.out
    assert second.mutating == []


def test_drain_blocked_by_pdb_names_it_and_says_how_to_finish(rig: Rig):
    rig.update(drain="pdb")
    result = rig.run("drain.sh", KUBEHOP_DRAIN_TIMEOUT="5")
    assert result.rc == 1
    assert "FAILED: drain did not finish within 5s; the likely cause is a PodDisruptionBudget" in result.err
    assert "prod/web-0" in result.err and "kubectl get pdb -A" in result.err
    assert "master0 is left cordoned" in result.err
    assert "kubectl drain master0 --ignore-daemonsets --delete-emptydir-data" in result.err
    assert "kubectl uncordon master0" in result.err
    assert rig.state()["node"]["unschedulable"] is True


def test_drain_never_forces_bare_pods(rig: Rig):
    rig.update(drain="bare")
    result = rig.run("drain.sh")
    assert result.rc == 1 and "kubehop never uses --force" in result.err
    assert all("--force" not in c and "--disable-eviction" not in c for c in result.commands)


def test_drain_unknown_node_fails_before_touching_anything(rig: Rig):
    result = rig.run("drain.sh", KUBEHOP_NODE="master9")
    assert result.rc == 1 and "cannot read node master9 from the API server" in result.err
    assert 'nodes "master9" not found' in result.err and result.mutating == []


# --------------------------------------------------------------------------- kubelet_upgrade.sh
def test_kubelet_upgrade_installs_restarts_then_skips(rig: Rig):
    rig.installed(kubeadm=NEW)
    first = rig.run("kubelet_upgrade.sh")
    assert first.rc == 0, first.err
    install = f"apt-get {APT_OPTS} install -y --allow-change-held-packages kubelet={NEW}-* kubectl={NEW}-*"
    assert first.commands == [
        "kubelet --version", "kubectl version --client -o json",
        *detached_apt(rig, "kubelet-upgrade", install)[:1],
        "apt-mark unhold kubelet kubectl",
        detached_apt(rig, "kubelet-upgrade", install)[1], install,
        "apt-mark hold kubelet kubectl",
        "kubelet --version", "kubectl version --client -o json",
        "systemctl daemon-reload", "systemctl restart kubelet", "systemctl is-active --quiet kubelet"]
    state = rig.state()
    assert state["packages"]["kubelet"] == NEW_DEB and state["packages"]["kubectl"] == NEW_DEB
    assert {"kubelet", "kubectl"} <= set(state["holds"]) and state["kubelet_running"] == NEW

    second = rig.run("kubelet_upgrade.sh")
    assert skipped(second, "kubelet-upgrade"), second.out + second.err
    assert second.commands == ["kubelet --version", "kubectl version --client -o json",
                               f"kubectl get node master0 -o {KUBELET_JSONPATH}", "apt-mark showhold"]


def test_kubelet_upgrade_only_restarts_when_binaries_are_new_but_kubelet_is_old(rig: Rig):
    rig.installed(kubeadm=NEW, kubelet=NEW, kubectl=NEW)  # e.g. the restart failed last time
    result = rig.run("kubelet_upgrade.sh")
    assert result.rc == 0, result.err
    assert result.mutating == ["systemctl daemon-reload", "systemctl restart kubelet"]
    assert rig.state()["kubelet_running"] == NEW


def test_kubelet_upgrade_restart_failure(rig: Rig):
    rig.installed(kubeadm=NEW)
    rig.fail("systemctl", "restart kubelet", rc=1,
             stderr="Job for kubelet.service failed because the control process exited with error code.")
    result = rig.run("kubelet_upgrade.sh")
    assert result.rc == 1 and "FAILED: systemctl restart kubelet failed" in result.err
    assert "journalctl -u kubelet" in result.err


def test_kubelet_upgrade_apt_failure_does_not_restart(rig: Rig):
    result = rig.run("kubelet_upgrade.sh")  # index still at 1.26
    assert result.rc == 1 and "not in the configured apt repo" in result.err
    assert not any(c.startswith(("systemctl restart", "systemctl daemon-reload")) for c in result.commands)
    assert {"kubelet", "kubectl"} <= set(rig.state()["holds"])


# --------------------------------------------------------------------------- uncordon.sh
def test_uncordon_waits_for_ready_then_skips(rig: Rig):
    rig.update(kubelet_running=NEW, node={"unschedulable": True, "ready": False, "ready_in": 2,
                                          "annotations": KUBEHOP_CORDON})
    first = rig.run("uncordon.sh", KUBEHOP_READY_TIMEOUT="10", KUBEHOP_POLL_INTERVAL="0.1")
    assert first.rc == 0, first.err
    get = f"kubectl get node master0 -o {NODE_JSONPATH}"
    assert first.commands == [get, UNCORDON, get, get]
    assert "annotations" not in rig.state()["node"] or rig.state()["node"]["annotations"] == {}
    assert "waiting for Ready with kubelet v1.27.16 (schedulable=yes Ready=False" in first.out
    assert "done: master0 is schedulable=yes Ready=True kubelet=v1.27.16" in first.out
    assert rig.state()["node"]["unschedulable"] is False

    second = rig.run("uncordon.sh")
    assert skipped(second, "uncordon") and second.commands == [get]


def test_uncordon_times_out_naming_last_state(rig: Rig):
    rig.update(node={"unschedulable": True, "ready": True, "annotations": KUBEHOP_CORDON})  # kubelet still reports OLD
    result = rig.run("uncordon.sh", KUBEHOP_READY_TIMEOUT="1", KUBEHOP_POLL_INTERVAL="0.2")
    assert result.rc == 1
    assert f"FAILED: master0 did not become Ready with kubelet v{NEW} within 1s " \
           f"(last seen: schedulable=yes Ready=True kubelet=v{OLD})" in result.err
    assert "journalctl -u kubelet" in result.err


def test_uncordon_failure_keeps_node_cordoned_and_says_so(rig: Rig):
    rig.update(kubelet_running=NEW, node={"unschedulable": True, "annotations": KUBEHOP_CORDON})
    rig.fail("kubectl", " patch node master0 ", rc=1, stderr="error: Unauthorized")
    result = rig.run("uncordon.sh")
    assert result.rc == 1 and "FAILED: kubectl patch (uncordon) of master0 failed" in result.err
    assert "stays cordoned" in result.err


# --------------------------------------------------------------------------- join_token.sh
CLUSTER, REGION = "prod-b", "eu-west-1"
PARAM = f"/kubehop/{CLUSTER}"
ENDPOINT = "10.0.0.10:6443"
GET = f"--region {REGION} --name {{}} --with-decryption --query Parameter.Value --output text"
BOOTSTRAP_TOKEN = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")


def token_env(**extra: str) -> dict[str, str]:
    return {"KUBEHOP_CLUSTER": CLUSTER, "KUBEHOP_REGION": REGION, **extra}


def make_ca(rig: Rig) -> str:
    """A real self-signed CA at $ROOT/etc/kubernetes/pki/ca.crt, made with openssl; returns kubeadm's
    discovery hash of it, computed here independently (SHA-256 of the DER SubjectPublicKeyInfo)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pki = rig.root / "etc/kubernetes/pki"
    pki.mkdir(parents=True, exist_ok=True)
    subprocess.run([shutil.which("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(rig.tmp / "ca.key"), "-out", str(pki / "ca.crt"), "-days", "1", "-subj", "/CN=kubernetes"],
                   check=True, capture_output=True)
    cert = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def get_param(name: str) -> str:
    return f"aws ssm get-parameter {GET.format(PARAM + '/' + name)}"


def put_string(name: str, value: str) -> str:
    return f"aws ssm put-parameter --region {REGION} --name {PARAM}/{name} --type String --overwrite --value {value}"


READS = ["kubectl config view --minify -o jsonpath={.clusters[0].cluster.server}",
         get_param("api-endpoint"), get_param("ca-cert-hash"), get_param("join-token")]


def assert_token_hidden(result: Result, token: str) -> None:
    for call in result.calls:
        assert token not in " ".join(call["argv"]), f"the token is in the argv of {render(call)}"
    assert token not in result.out + result.err


def tokens(rig: Rig) -> list[dict]:
    return rig.state()["tokens"]


def test_join_token_creates_and_publishes_then_skips(rig: Rig):
    ca_hash = make_ca(rig)
    started = time.time()
    first = rig.run("join_token.sh", **token_env())
    assert first.rc == 0, first.err
    (made,) = tokens(rig)
    token = made["token"]
    assert BOOTSTRAP_TOKEN.match(token) and made["description"] == "kubehop node rollout"
    assert started + 6 * 3600 - 5 <= made["expires"] <= time.time() + 6 * 3600
    assert first.commands[:4] == READS
    assert first.commands[4:7] == [
        put_string("api-endpoint", ENDPOINT), put_string("ca-cert-hash", ca_hash),
        f"kubeadm token create --kubeconfig {rig.kubeconfig} --ttl 6h --description kubehop node rollout"]
    (put_token,) = first.commands[7:]
    prefix = f"aws ssm put-parameter --region {REGION} --name {PARAM}/join-token --type SecureString --overwrite " \
             f"--cli-input-json file://{rig.scratch}/"
    assert put_token.startswith(prefix) and put_token.endswith("/put.json"), put_token
    state = rig.state()
    assert state["ssm"] == {
        f"{PARAM}/api-endpoint": {"Value": ENDPOINT, "Type": "String", "Version": 1},
        f"{PARAM}/ca-cert-hash": {"Value": ca_hash, "Type": "String", "Version": 1},
        f"{PARAM}/join-token": {"Value": token, "Type": "SecureString", "Version": 1}}
    # The token reached aws only through the 0600 input file (gone now: check_every_run), never an argv.
    assert [(p["name"].rsplit("/", 1)[1], p["via"], p["file_mode"]) for p in state["ssm_puts"]] == [
        ("api-endpoint", "argv", None), ("ca-cert-hash", "argv", None), ("join-token", "file", "0o600")]
    assert_token_hidden(first, token)
    assert f"done: bootstrap token {token.split('.')[0]} (ttl 6h) written to {PARAM}/join-token" in first.out

    second = rig.run("join_token.sh", **token_env())
    assert skipped(second, "join-token"), second.out + second.err
    assert "more than half of 6h left" in second.out
    assert second.commands == [*READS, f"kubeadm token list --kubeconfig {rig.kubeconfig} -o json"]
    assert second.mutating == [] and tokens(rig) == [made]
    assert_token_hidden(second, token)


@pytest.mark.parametrize(("left", "message"), [
    (2 * 3600, "has only"),  # less than half of 6h left
    (-60, "is expired or gone from the cluster"),
    (None, "is expired or gone from the cluster"),  # deleted from the cluster
])
def test_join_token_replaces_a_short_lived_expired_or_deleted_token(rig: Rig, left: int | None, message: str):
    make_ca(rig)
    assert rig.run("join_token.sh", **token_env()).rc == 0
    (old,) = tokens(rig)
    rig.update(tokens=[] if left is None else [{**old, "expires": time.time() + left}])
    result = rig.run("join_token.sh", **token_env())
    assert result.rc == 0, result.err
    assert message in result.out
    new = tokens(rig)[-1]
    assert new["token"] != old["token"] and BOOTSTRAP_TOKEN.match(new["token"])
    assert rig.state()["ssm"][f"{PARAM}/join-token"] == {"Value": new["token"], "Type": "SecureString", "Version": 2}
    # Endpoint and hash were current: only the token is written.
    assert [c.split(" --")[0] for c in result.mutating] == ["kubeadm token create", "aws ssm put-parameter"]
    assert_token_hidden(result, new["token"])
    assert_token_hidden(result, old["token"])
    assert skipped(rig.run("join_token.sh", **token_env()), "join-token")


def test_join_token_custom_ttl_and_stale_endpoint(rig: Rig):
    make_ca(rig)
    first = rig.run("join_token.sh", **token_env(KUBEHOP_TOKEN_TTL="1h30m"))
    assert first.rc == 0, first.err
    assert f"kubeadm token create --kubeconfig {rig.kubeconfig} --ttl 1h30m --description kubehop node rollout" \
        in first.commands
    assert tokens(rig)[0]["expires"] <= time.time() + 5400
    # The kubeconfig now names a load balancer (no port: 443): only the endpoint is rewritten.
    rig.update(api_server="https://api.prod-b.example.com/")
    second = rig.run("join_token.sh", **token_env(KUBEHOP_TOKEN_TTL="1h30m"))
    assert second.rc == 0, second.err
    assert second.mutating == [put_string("api-endpoint", "api.prod-b.example.com:443")]
    assert "the token in /kubehop/prod-b/join-token is kept" in second.out
    assert len(tokens(rig)) == 1


def test_join_token_put_failure_deletes_the_new_token_and_leaves_no_file(rig: Rig):
    make_ca(rig)
    denied = ("An error occurred (AccessDeniedException) when calling the PutParameter operation: User: "
              "arn:aws:sts::123456789012:assumed-role/master/i-0abc is not authorized to perform: ssm:PutParameter "
              f"on resource: arn:aws:ssm:{REGION}:123456789012:parameter{PARAM}/join-token because no "
              "identity-based policy allows the ssm:PutParameter action")
    rig.fail("aws", r"^ssm put-parameter .*/join-token", rc=254, stderr=denied)
    result = rig.run("join_token.sh", **token_env())
    assert result.rc == 1
    assert f"FAILED: aws ssm put-parameter {PARAM}/join-token failed: " in result.err
    assert "is not authorized to perform: ssm:PutParameter" in result.err
    assert f"needs ssm:PutParameter on arn:aws:ssm:{REGION}:<account>:parameter{PARAM}/*" in result.err
    assert "was deleted again" in result.err
    # No unused credential left in the cluster, none in SSM, no input file in TMPDIR (check_every_run).
    assert tokens(rig) == [] and f"{PARAM}/join-token" not in rig.state()["ssm"]
    created = [c for c in result.calls if c["argv"][:2] == ["token", "create"]]
    assert len(created) == 1 and result.commands[-1].startswith("kubeadm token delete")


def test_join_token_no_write_permission_fails_before_making_a_token(rig: Rig):
    make_ca(rig)
    rig.fail("aws", r"^ssm put-parameter", rc=254, stderr="An error occurred (AccessDeniedException) when calling "
             "the PutParameter operation: not authorized to perform: ssm:PutParameter")
    result = rig.run("join_token.sh", **token_env())
    assert result.rc == 1 and f"FAILED: aws ssm put-parameter {PARAM}/api-endpoint failed" in result.err
    assert "needs ssm:PutParameter" in result.err
    assert not [c for c in result.commands if c.startswith("kubeadm token")] and tokens(rig) == []


def test_join_token_unreadable_parameter_fails_without_changes(rig: Rig):
    make_ca(rig)
    rig.fail("aws", r"^ssm get-parameter", rc=254, stderr="An error occurred (AccessDeniedException) when calling "
             "the GetParameter operation: not authorized to perform: ssm:GetParameter")
    result = rig.run("join_token.sh", **token_env())
    assert result.rc == 1 and f"FAILED: cannot read SSM parameter {PARAM}/api-endpoint in {REGION}" in result.err
    assert "needs ssm:GetParameter" in result.err and "nothing was changed" in result.err
    assert result.mutating == []


def test_join_token_needs_the_ca_and_the_aws_cli(rig: Rig):
    result = rig.run("join_token.sh", **token_env())
    assert result.rc == 1 and f"FAILED: cannot read {rig.root}/etc/kubernetes/pki/ca.crt" in result.err
    assert result.calls == []
    make_ca(rig)
    (rig.bin / "aws").unlink()
    result = rig.run("join_token.sh", **token_env())
    assert result.rc == 1 and "FAILED: aws is not installed on master0; install it (Ubuntu: apt-get install awscli)" \
        in result.err
    assert result.calls == []


def test_join_token_refuses_a_kubeconfig_server_that_is_not_https(rig: Rig):
    make_ca(rig)
    rig.update(api_server="http://10.0.0.10:8080")
    result = rig.run("join_token.sh", **token_env())
    assert result.rc == 1 and "is 'http://10.0.0.10:8080', not https://<host>[:port]" in result.err
    assert result.mutating == []


# Whole stages of every master: tests/scripts/test_cp_kubeadm_minor.py (the plan's steps, real kubectl).
