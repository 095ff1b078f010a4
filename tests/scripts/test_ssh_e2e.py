"""The control-plane steps as the program sends them, over a real sshd.

The offline plan records each remote step's command line and stdin exactly
as `command:remote:Command` would send them. Here a real OpenSSH server on
127.0.0.1 plays master0 (its PATH holds the recording stand-ins for kubeadm,
kubectl, apt-get ... and a `sudo` that just runs the command), and the real
OpenSSH client sends master0's first steps; a failing one stops with its
reason. Every master's whole stage over sshd: tests/scripts/test_cp_masters_ssh.py.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from kubehop.plan.stages import build, read_stack_file
from tests.plan_helpers import prod_b
from tests.scripts.test_control_plane_scripts import NEW_DEB, Rig

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sshd:
    """A throwaway sshd on loopback that logs in with one generated key."""

    def __init__(self, tmp: Path, env: dict[str, str]):
        assert os.path.exists(SSHD), "openssh-server is missing: `make test` installs it (scripts/install-test-deps.sh)"
        assert os.geteuid() == 0, "sshd's privilege separation needs root (CI runs as root)"
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.dir = tmp / "sshd"
        self.dir.mkdir()
        self.key = self.dir / "id_ed25519"
        for path in (self.dir / "host_key", self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        (self.dir / "authorized_keys").write_text((self.dir / "id_ed25519.pub").read_text())
        self.port = free_port()
        setenv = " ".join(f"{k}={v}" for k, v in env.items())
        config = self.dir / "sshd_config"
        config.write_text(f"""Port {self.port}
ListenAddress 127.0.0.1
HostKey {self.dir / 'host_key'}
AuthorizedKeysFile {self.dir / 'authorized_keys'}
PidFile {self.dir / 'sshd.pid'}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv {setenv}
""")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stderr=open(self.dir / "sshd.log", "w"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError(f"sshd did not start: {(self.dir / 'sshd.log').read_text()}")

    def run(self, command: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ssh", "-i", str(self.key), "-p", str(self.port), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
             "root@127.0.0.1", command],
            input=stdin, capture_output=True, text=True, timeout=60)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def master0(tmp_path: Path):
    rig = Rig(tmp_path)
    sudo = rig.bin / "sudo"
    sudo.write_text('#!/bin/sh\nexec "$@"\n')  # the steps run as root already
    sudo.chmod(0o755)
    for tool in ("sh", "dirname", "sleep", "date", "sort", "head", "tail", "tr", "sed", "awk", "cut", "wc", "ls",
                 "stat", "id", "printf", "true", "test", "basename", "readlink", "xargs", "printenv"):
        real = shutil.which(tool)
        if real and not (rig.realbin / tool).exists():
            (rig.realbin / tool).symlink_to(real)
    # sandbox: every /etc and /var path under the rig's root; never the real machine
    env = {"PATH": f"{rig.bin}:{rig.realbin}", "KUBEHOP_ROOT": str(rig.root), "KUBEHOP_KUBECONFIG": rig.kubeconfig,
           "KUBEHOP_POLL_INTERVAL": "0.2", "TMPDIR": str(rig.scratch), "LC_ALL": "C"}
    sshd = Sshd(tmp_path, env)
    try:
        probe = sshd.run("echo \"$KUBEHOP_ROOT\"")
        assert probe.returncode == 0 and probe.stdout.strip() == str(rig.root), \
            f"sshd did not set the sandbox environment; refusing to run steps: {probe.stdout}{probe.stderr}"
        yield rig, sshd
    finally:
        sshd.stop()


def test_a_failing_step_stops_with_its_reason_over_ssh(master0):
    rig, sshd = master0
    plan = build(read_stack_file(prod_b()), stack="prod-b", to="1.27", policy=None)
    stage = next(s for s in plan["stages"] if s["name"] == "1.27.16")
    master0_steps = [s for s in stage["steps"] if s["target"] == "master0" and s["action"] in ("package-repo", "kubeadm-install")]
    rig.fail("apt-get", r"\binstall\b", rc=100, stderr="E: Unable to locate package kubeadm")
    repo, install = master0_steps[0], master0_steps[1]
    assert sshd.run(repo["inputs"]["create"], repo["inputs"]["stdin"]).returncode == 0
    result = sshd.run(install["inputs"]["create"], install["inputs"]["stdin"])
    assert result.returncode == 1
    assert "kubehop: kubeadm-install on master0: FAILED:" in result.stderr
    assert rig.state()["packages"]["kubeadm"] != NEW_DEB
