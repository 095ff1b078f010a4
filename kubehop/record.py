"""What a step that ran can record, and the state kubehop records from it.

A gate that passes prints one line on stdout, `kubehop-record {...}`, naming
the gate and the arguments it passed with; that stdout becomes the Command's
`stdout` output. The stack's `kubehop` output (what the next run's hop rules
read) is derived only from those lines, so it moves only when the step that
proves a fact really ran in this `pulumi up`:

- `pulumi up --target`/`--exclude`: the engine keeps an untargeted resource's
  old state, outputs included (pulumi/pulumi `pkg/resource/deploy/
  step_generator.go`: a resource outside the targets gets a SameStep with its
  old state), so an untargeted verification step still shows the previous
  hop's line and nothing new is recorded.
- `pulumi refresh`: pulumi-command's Read returns the stored state as it is,
  so a refresh cannot invent a line either.

Plain Python (no Pulumi): the program, the gates and the offline plan share it.
"""
from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from kubehop.catalog import Version

PREFIX = "kubehop-record "


def line(gate: str, argv: Sequence[str]) -> str:
    """The line a gate prints on stdout once it has passed."""
    return PREFIX + json.dumps({"gate": gate, "argv": list(argv)}, sort_keys=True)


def parse(stdout: str | None) -> tuple[str, list[str]] | None:
    """The last record line of a step's stdout: (gate, argv), or None."""
    for text in reversed((stdout or "").splitlines()):
        if text.startswith(PREFIX):
            try:
                data = json.loads(text[len(PREFIX):])
                return str(data["gate"]), [str(a) for a in data["argv"]]
            except (ValueError, KeyError, TypeError):
                return None
    return None


def arg(argv: Sequence[str], flag: str) -> str | None:
    """The value after `flag` in a recorded argv."""
    argv = list(argv)
    return argv[argv.index(flag) + 1] if flag in argv and argv.index(flag) + 1 < len(argv) else None


def adopted_state(cfg: Any) -> dict[str, Any]:
    """The state the adopt config describes (a stack with no recorded state), in
    the recorded output's shape: the program and the offline plan both start from it."""
    workers = cfg.adopt.worker_version or cfg.adopt.kubernetes_version
    return {"controlPlaneVersion": str(Version.parse(cfg.adopt.kubernetes_version)),
            "workerVersion": str(Version.parse(workers)), "imageVersion": None,
            "traffic": "serving", "mirrorMaker": "running", "amis": dict(cfg.adopt.amis),
            "addons": {name: a.chart_version for name, a in cfg.adopt.addons.items() if a.chart_version},
            "pools": {}}


def snapshot(stdout: str | None) -> dict[str, str] | None:
    """What the etcd-snapshot step recorded (components/scripts/control_plane/
    etcd_snapshot.sh): the snapshot's path, revision, key count and S3 copy ("" if
    none), or None when its stdout holds no such record."""
    parsed = parse(stdout)
    if parsed is None or parsed[0] != "etcd-snapshot":
        return None
    return {name: arg(parsed[1], f"--{name}") or "" for name in ("path", "revision", "keys", "s3")}


def recorded_state(previous: Mapping[str, Any], records: Mapping[str, str | None],
                   built: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """The state to record: the previous one, moved only by what ran.

    `records` maps a role to the stdout of the step that proves it:
    "nodes" (the nodes verification: both versions), "traffic:<state>" (the
    step that completes that transition), "mirrormaker:<cluster>" (each
    MirrorMaker step), "rollout:<pool role>:<pool>" (a pool's rollout wait:
    its image and kubelet, for the role and the pool), "deferred:<pool role>:<pool>"
    (the rollout wait of a pool that rolls after serving: the pool's own only),
    "addon:<name>" (the addon's check: the chart its release runs). `built` maps an image role to the version its build step's own
    state says it was built for.
    """
    state: dict[str, Any] = {"controlPlaneVersion": previous.get("controlPlaneVersion"),
                             "workerVersion": previous.get("workerVersion"),
                             "imageVersion": previous.get("imageVersion"),
                             "traffic": previous.get("traffic") or "serving",
                             "mirrorMaker": previous.get("mirrorMaker") or "running",
                             "amis": dict(previous.get("amis") or {}),
                             "addons": dict(previous.get("addons") or {}),
                             "pools": dict(previous.get("pools") or {})}
    # the versions move only once every verification check ("verify:<check>") has passed
    verified = all(parse(v) for k, v in records.items() if k.startswith("verify:"))
    for key, stdout in sorted(records.items()):
        parsed = parse(stdout)
        if parsed is None:
            continue
        gate, argv = parsed
        if key == "nodes" and gate == "nodes" and verified:
            state["controlPlaneVersion"] = (arg(argv, "--control-plane-version") or "").lstrip("v") or state["controlPlaneVersion"]
            state["workerVersion"] = (arg(argv, "--worker-version") or "").lstrip("v") or state["workerVersion"]
        elif key.startswith("traffic:"):
            state["traffic"] = key.split(":", 1)[1]
    mirror = [parse(stdout) for key, stdout in records.items() if key.startswith("mirrormaker:")]
    actions = {arg(p[1], "--action") for p in mirror if p}
    if mirror and len(actions) == 1 and all(mirror):
        # stopped only once both clusters' MirrorMaker stopped; running once both started
        state["mirrorMaker"] = {"stop": "stopped", "start": "running"}.get(actions.pop(), state["mirrorMaker"])
    for key, stdout in records.items():
        parsed = parse(stdout)
        if key.startswith(("rollout:", "deferred:")) and parsed:
            image = arg(parsed[1], "--image-id")
            kubelet = (arg(parsed[1], "--kubelet-version") or "").lstrip("v")
            role, pool = key.split(":")[1:3]
            if image and kubelet:
                state["pools"][pool] = {"version": kubelet, "ami": image}
            if image and key.startswith("rollout:"):  # a pool rolled after serving never moves its role's AMI
                state["amis"][role] = image
        elif key.startswith("addon:") and parsed and parsed[0] == "addon-check" and arg(parsed[1], "--chart-version"):
            # the chart the addon's check proved its release runs (kubehop/gates/addons.py release_runs)
            state["addons"][key.split(":", 1)[1]] = arg(parsed[1], "--chart-version")
    for version in (built or {}).values():
        if version:
            state["imageVersion"] = version
    return state

