"""A recording stand-in for crictl on a kubeadm master whose etcd is a static pod.

    exec python -S crictl_standin.py RIG_DIR "$@"

Modelled on cri-tools' crictl (docs/crictl.md and cmd/crictl/container.go):
- `crictl ps --name REGEX --state STATE -q`: the IDs of the containers whose
  name matches the regular expression and whose state is STATE (compared
  case-insensitively: running, created, exited, unknown), one full ID a line.
- `crictl exec ID CMD ARG...`: runs CMD in that container with its exit
  status; an unknown or stopped container fails like the CRI's NotFound; a
  command the image lacks fails like runc's "executable file not found".

The etcd container is the one kubeadm writes (cmd/kubeadm/app/phases/etcd/
local.go): host network, and hostPath mounts of /var/lib/etcd and
/etc/kubernetes/pki/etcd at the same paths, so inside it those paths are the
node's (here: under state["root"]). Its image (registry.k8s.io/etcd,
kubernetes/kubernetes cluster/images/etcd/Dockerfile: etcd*, etcdctl*) holds
etcdctl, and etcdutl from etcd 3.5 on (state["etcdutl"]). etcdctl is the real
one on this machine (3.4); `etcdutl snapshot status -w json` is answered by
the real `etcdctl snapshot status -w json`: etcd 3.5 moved that command, with
its printer and JSON fields (hash, revision, totalKey, totalSize), to etcdutl.

RIG_DIR/crictl.json: {"root", "containers": [{"id", "name", "state"}], "etcdutl": bool}.
Every call is appended to RIG_DIR/calls.jsonl as {"cmd": "crictl", "argv", "stdin_bytes": 0}.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import sys

RIG = sys.argv[1]
ARGV = sys.argv[2:]
MOUNTS = ("/var/lib/etcd", "/etc/kubernetes/pki/etcd")


def record() -> None:
    with open(os.path.join(RIG, "calls.jsonl"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(json.dumps({"cmd": "crictl", "argv": ARGV, "stdin_bytes": 0}) + "\n")


def die(rc: int, msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.exit(rc)


def option(args: list[str], *names: str) -> str | None:
    for i, a in enumerate(args):
        for n in names:
            if a == n and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def ps(state: dict, args: list[str]) -> None:
    if "-q" not in args and "--quiet" not in args:
        die(2, "stand-in crictl: only `ps ... -q` is modelled")
    name, want = option(args, "--name"), option(args, "--state", "-s")
    for c in state["containers"]:
        if name and not re.search(name, c["name"]):
            continue
        if want and c["state"].lower() != want.lower():
            continue
        print(c["id"])


def inside(root: str, arg: str) -> str:
    """A path argument as the container's mounts resolve it on the node."""
    prefix, eq, value = arg.rpartition("=") if arg.startswith("--") else ("", "", arg)
    if any(value == m or value.startswith(m + "/") for m in MOUNTS):
        value = root + value
    return prefix + eq + value


def exec_(state: dict, args: list[str]) -> None:
    cid, cmd, rest = args[0], args[1], args[2:]
    match = [c for c in state["containers"] if c["id"] == cid or c["id"].startswith(cid)]
    if not match or match[0]["state"] != "running":
        die(1, f'time="2026-12-02T15:00:00Z" level=fatal msg="execing command in container: rpc error: code = NotFound desc = '
               f'could not find container \\"{cid}\\""')
    real = shutil.which("etcdctl", path="/usr/local/bin:/usr/bin:/bin")
    if real is None:
        die(127, "stand-in: the real etcdctl is not installed (Debian package etcd-client)")
    mapped = [inside(state["root"], a) for a in rest]
    if cmd == "etcdctl":
        os.execve(real, [real, *mapped], {**os.environ, "ETCDCTL_API": "3"})
    if cmd == "etcdutl" and state.get("etcdutl"):
        if rest == ["version"]:
            print("etcdutl version: 3.5.16\nAPI version: 3.5")
            return
        if rest[:2] == ["snapshot", "status"]:
            os.execve(real, [real, *mapped], {**os.environ, "ETCDCTL_API": "3"})
        die(2, f"stand-in crictl: etcdutl {rest} is not modelled")
    die(126, 'time="2026-12-02T15:00:00Z" level=fatal msg="execing command in container: OCI runtime exec failed: exec failed: '
             f'unable to start container process: exec: \\"{cmd}\\": executable file not found in $PATH: unknown"')


def main() -> None:
    record()
    with open(os.path.join(RIG, "crictl.json")) as fh:
        state = json.load(fh)
    if ARGV[:1] == ["ps"]:
        ps(state, ARGV[1:])
    elif ARGV[:1] == ["exec"]:
        exec_(state, [a for a in ARGV[1:] if a not in ("-i", "-t")])
    else:
        die(2, f"stand-in crictl: {ARGV} is not modelled")


if __name__ == "__main__":
    main()
