"""Cutover actions (`serviceswitch`, `mirrormaker`) against a stand-in kubectl.

The stand-in keeps one JSON file per object under a state directory
(STATE/<context>/<namespace>/<kind>/<name>.json), applies merge patches,
annotations and scales to them, lets a scale "settle" only after a few reads
(so the actions must wait), and appends every argv to STATE/argv.jsonl.
STATE/fail.json makes one verb fail or hang.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

from kubehop.gates import cli
from kubehop.gates.cutover import (
    REPLICAS_ANNOTATION,
    label_selector,
    merge_patch_differences,
)

STANDIN = r'''
import json, os, sys, time
from pathlib import Path

STATE = Path(os.environ["KUBECTL_STANDIN_STATE"])
argv = sys.argv[1:]
with open(STATE / "argv.jsonl", "a") as log:
    log.write(json.dumps(argv) + "\n")

VALUED = {"--kubeconfig", "--context", "-n", "--namespace", "-o", "--output",
          "-l", "--selector", "--type", "-p", "--patch", "--replicas", "--current-replicas"}
flags, pos = {}, []
i = 0
while i < len(argv):
    a = argv[i]
    if a.startswith("-"):
        if "=" in a:
            k, v = a.split("=", 1); flags[k] = v
        elif a in VALUED:
            flags[a] = argv[i + 1]; i += 1
        else:
            flags[a] = True
    else:
        pos.append(a)
    i += 1

def die(msg, rc=1):
    sys.stderr.write(msg + "\n"); sys.exit(rc)

verb, rest = pos[0], pos[1:]
fail_file = STATE / "fail.json"
if fail_file.exists():
    fail = json.loads(fail_file.read_text())
    if fail.get("verb") in (verb, "*"):
        time.sleep(fail.get("sleep", 0))
        die(fail.get("stderr", "error: injected failure"), fail.get("rc", 1))

config = json.loads((STATE / "config.json").read_text()) if (STATE / "config.json").exists() else {}
ctx = flags.get("--context", "default")
ns = flags.get("-n") or flags.get("--namespace") or "default"
KINDS = {"deploy": "deployment", "deployments": "deployment", "deployment.apps": "deployment",
         "sts": "statefulset", "statefulsets": "statefulset", "statefulset.apps": "statefulset",
         "endpoint": "endpoints"}

def ref(args):
    if len(args) == 1 and "/" in args[0]:
        kind, name = args[0].split("/", 1)
    else:
        kind, name = args[0], args[1]
    return KINDS.get(kind, kind), name

def path(kind, name):
    return STATE / ctx / ns / kind / f"{name}.json"

def load(kind, name):
    p = path(kind, name)
    if not p.exists():
        die(f'Error from server (NotFound): {kind} "{name}" not found')
    return json.loads(p.read_text())

def save(kind, name, obj):
    path(kind, name).write_text(json.dumps(obj, indent=1))

def settle(kind, name, obj):
    """A pending scale becomes visible in status after some reads."""
    pending = obj.get("metadata", {}).get("annotations", {}).get("standin/pending-reads")
    if pending is None:
        return obj
    left = int(pending) - 1
    if left <= 0:
        del obj["metadata"]["annotations"]["standin/pending-reads"]
        n = obj["spec"]["replicas"]
        obj["status"] = {"replicas": n, "readyReplicas": n, "availableReplicas": n, "updatedReplicas": n,
                         "observedGeneration": obj["metadata"]["generation"]}
    else:
        obj["metadata"]["annotations"]["standin/pending-reads"] = str(left)
    save(kind, name, obj)
    return obj

def merge(target, patch):
    if not isinstance(patch, dict):
        return patch
    target = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        else:
            target[k] = merge(target.get(k), v)
    return target

if verb == "get":
    if rest[0] == "pods":
        want = dict(kv.split("=", 1) for kv in flags["-l"].split(","))
        items = []
        for f in sorted((STATE / ctx / ns).glob("*/*.json")):
            if f.parent.name not in ("deployment", "statefulset"):
                continue
            obj = settle(f.parent.name, f.stem, json.loads(f.read_text()))
            labels = obj["spec"]["template"]["metadata"]["labels"]
            if all(labels.get(k) == v for k, v in want.items()):
                for n in range(obj.get("status", {}).get("replicas") or 0):
                    items.append({"metadata": {"name": f"{f.stem}-{n}", "labels": labels}})
        print(json.dumps({"kind": "List", "items": items}))
    else:
        kind, name = ref(rest)
        print(json.dumps(settle(kind, name, load(kind, name))))
elif verb == "patch":
    kind, name = ref(rest)
    obj = load(kind, name)
    assert flags.get("--type") == "merge", flags
    if not config.get("ignore_patches"):
        new = merge(obj, json.loads(flags["-p"]))
        if new.get("spec") != obj.get("spec"):
            new["metadata"]["generation"] = new["metadata"].get("generation", 1) + 1
        save(kind, name, new)
    print(f"{kind}/{name} patched")
elif verb == "annotate":
    kind, name = ref(rest[:1])
    obj = load(kind, name)
    key, value = rest[1].split("=", 1)
    ann = obj["metadata"].setdefault("annotations", {})
    if key in ann and ann[key] != value and "--overwrite" not in flags:
        die(f"error: --overwrite is false but found the following declared annotation(s): '{key}' already has a value ({ann[key]})")
    ann[key] = value
    save(kind, name, obj)
    print(f"{kind}/{name} annotated")
elif verb == "scale":
    kind, name = ref(rest)
    obj = load(kind, name)
    if "--current-replicas" in flags and int(flags["--current-replicas"]) != obj["spec"]["replicas"]:
        die(f"error: Expected replicas to be {flags['--current-replicas']}, was {obj['spec']['replicas']}")
    n = int(flags["--replicas"])
    if n != obj["spec"]["replicas"]:
        obj["spec"]["replicas"] = n
        obj["metadata"]["generation"] += 1
        obj["metadata"].setdefault("annotations", {})["standin/pending-reads"] = str(config.get("settle_reads", 4))
        save(kind, name, obj)
    print(f"{kind}/{name} scaled")
else:
    die(f"stand-in kubectl: unsupported verb {verb!r}", 2)
'''


class Cluster:
    """The stand-in kubectl and its state directory."""

    def __init__(self, root: Path):
        self.state = root / "state"
        self.state.mkdir()
        self.kubectl = root / "kubectl"
        self.kubectl.write_text(f"#!{sys.executable}\n{STANDIN}")
        self.kubectl.chmod(self.kubectl.stat().st_mode | stat.S_IXUSR)
        self.configure(settle_reads=4)

    def configure(self, **config) -> None:
        (self.state / "config.json").write_text(json.dumps(config))

    def fail(self, verb: str, stderr: str = "error: injected", rc: int = 1, sleep: float = 0) -> None:
        (self.state / "fail.json").write_text(json.dumps({"verb": verb, "stderr": stderr, "rc": rc, "sleep": sleep}))

    def heal(self) -> None:
        (self.state / "fail.json").unlink(missing_ok=True)

    def path(self, ctx: str, ns: str, kind: str, name: str) -> Path:
        return self.state / ctx / ns / kind / f"{name}.json"

    def put(self, ctx: str, ns: str, kind: str, name: str, obj: dict) -> None:
        p = self.path(ctx, ns, kind, name)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(obj))

    def obj(self, ctx: str, ns: str, kind: str, name: str) -> dict:
        return json.loads(self.path(ctx, ns, kind, name).read_text())

    def put_workload(self, ctx: str, ns: str, kind: str, name: str, replicas: int, annotations=None) -> None:
        labels = {"app": name}
        self.put(ctx, ns, kind, name, {
            "apiVersion": "apps/v1", "kind": kind.capitalize(),
            "metadata": {"name": name, "namespace": ns, "generation": 1, "annotations": dict(annotations or {})},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}}},
            "status": {"replicas": replicas, "readyReplicas": replicas, "observedGeneration": 1},
        })

    def calls(self) -> list[list[str]]:
        log = self.state / "argv.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def verbs(self) -> list[str]:
        """The first positional word of every call (get/patch/annotate/scale)."""
        out = []
        for argv in self.calls():
            skip = False
            for a in argv:
                if skip:
                    skip = False
                elif a in ("--kubeconfig", "--context", "-n"):
                    skip = True
                elif not a.startswith("-"):
                    out.append(a)
                    break
        return out

    def clear_log(self) -> None:
        (self.state / "argv.jsonl").unlink(missing_ok=True)

    def run(self, *args: str) -> Result:
        """The CLI in this process (fast)."""
        argv = [*args, "--kubectl", str(self.kubectl)]
        try:
            rc = cli.main(argv)
        except SystemExit as exc:  # argparse usage errors
            rc = exc.code
        captured = self.capsys.readouterr()
        return Result(rc, captured.out, captured.err)

    def run_subprocess(self, *args: str, timeout: float = 60) -> Result:
        """`python -m kubehop gate ...` end to end, as the Pulumi step runs it."""
        env = dict(os.environ, KUBECTL_STANDIN_STATE=str(self.state))
        done = subprocess.run(
            [sys.executable, "-m", "kubehop", "gate", *args, "--kubectl", str(self.kubectl)],
            check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cluster(tmp_path, monkeypatch, capsys):
    c = Cluster(tmp_path)
    c.capsys = capsys
    monkeypatch.setenv("KUBECTL_STANDIN_STATE", str(c.state))
    return c


# --- serviceswitch ------------------------------------------------------------------

def put_switch(cluster: Cluster, ctx: str = "west-b", active: str = "prod-b") -> None:
    cluster.put(ctx, "prod", "serviceswitch", "mysql", {
        "apiVersion": "ops.example.com/v1", "kind": "ServiceSwitch",
        "metadata": {"name": "mysql", "namespace": "prod", "generation": 1},
        "spec": {"active": active, "service": "mysql", "ports": [3306]},
    })


def switch(cluster: Cluster, *extra: str, ctx: str = "west-b", end_to_end: bool = False) -> Result:
    run = cluster.run_subprocess if end_to_end else cluster.run
    return run("serviceswitch", "--namespace", "prod", "--name", "mysql", "--context", ctx,
                       "--patch-json", '{"spec":{"active":"prod-a"}}', *extra)


def test_serviceswitch_patches_once_then_is_a_noop(cluster):
    put_switch(cluster, "west-b")
    put_switch(cluster, "west-a")

    first = switch(cluster, end_to_end=True)  # once end to end through `python -m kubehop`
    assert first.returncode == 0, first.stderr
    assert "serviceswitch/mysql in prod (context west-b): switched" in first.stderr
    assert ".spec.active: \"prod-b\" -> \"prod-a\"" in first.stderr
    assert cluster.obj("west-b", "prod", "serviceswitch", "mysql")["spec"] == {
        "active": "prod-a", "service": "mysql", "ports": [3306]}
    patches = [c for c in cluster.calls() if "patch" in c]
    assert len(patches) == 1
    assert patches[0][patches[0].index("-p") + 1] == '{"spec": {"active": "prod-a"}}'
    assert patches[0][patches[0].index("--type") + 1] == "merge"
    assert patches[0][patches[0].index("--context") + 1] == "west-b"
    assert cluster.verbs() == ["get", "patch", "get"]  # read, act, verify
    # the other cluster's object is untouched
    assert cluster.obj("west-a", "prod", "serviceswitch", "mysql")["spec"]["active"] == "prod-b"

    cluster.clear_log()
    second = switch(cluster)
    assert second.returncode == 0, second.stderr
    assert "already switched" in second.stderr
    assert cluster.verbs() == ["get"]


def test_serviceswitch_spec_json_shorthand_and_resource_name(cluster):
    cluster.put("west-b", "prod", "serviceswitches.ops.example.com", "mysql", {
        "metadata": {"name": "mysql", "generation": 1}, "spec": {"active": "prod-b", "old": 1}})

    result = cluster.run("serviceswitch", "--namespace", "prod", "--name", "mysql", "--context", "west-b",
                         "--resource", "serviceswitches.ops.example.com",
                         "--spec-json", '{"active": "prod-a", "old": null}')

    assert result.returncode == 0, result.stderr
    assert cluster.obj("west-b", "prod", "serviceswitches.ops.example.com", "mysql")["spec"] == {"active": "prod-a"}


def test_serviceswitch_fails_when_patch_does_not_stick(cluster):
    put_switch(cluster)
    cluster.configure(ignore_patches=True)  # an operator or webhook undoes it

    result = switch(cluster)

    assert result.returncode == 1
    assert "still differs" in result.stderr
    assert '.spec.active: "prod-b" -> "prod-a"' in result.stderr


def test_serviceswitch_missing_object_fails_clearly(cluster):
    result = switch(cluster)
    assert result.returncode == 1
    assert "gate serviceswitch FAILED" in result.stderr
    assert "NotFound" in result.stderr
    assert "`kubectl get serviceswitch mysql -o json` (context west-b) failed with exit 1" in result.stderr


def test_serviceswitch_kubectl_error_is_reported(cluster):
    put_switch(cluster)
    cluster.fail("patch", 'Error from server (Forbidden): serviceswitches "mysql" is forbidden: user cannot patch')

    result = switch(cluster)

    assert result.returncode == 1
    assert "`kubectl patch serviceswitch mysql --type merge" in result.stderr
    assert "Forbidden" in result.stderr
    assert cluster.obj("west-b", "prod", "serviceswitch", "mysql")["spec"]["active"] == "prod-b"


def test_serviceswitch_hung_kubectl_is_bounded(cluster):
    put_switch(cluster)
    cluster.fail("get", sleep=30)

    start = time.monotonic()
    result = switch(cluster, "--request-timeout", "0.5")
    elapsed = time.monotonic() - start

    assert result.returncode == 1
    assert "`kubectl get serviceswitch mysql -o json` (context west-b) timed out" in result.stderr
    assert elapsed < 10


def test_missing_kubectl_binary_fails_clearly(cluster):
    result = subprocess.run(
        [sys.executable, "-m", "kubehop", "gate", "serviceswitch", "--namespace", "prod", "--name", "mysql",
         "--spec-json", '{"active":"prod-a"}', "--kubectl", "/nonexistent/kubectl"],
        check=False, cwd=REPO, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert "kubectl not found: '/nonexistent/kubectl'" in result.stderr


def test_serviceswitch_bad_patch_is_a_usage_error(cluster):
    for bad in ("not json", "[1]", "{}"):
        result = cluster.run("serviceswitch", "--namespace", "prod", "--name", "mysql", "--patch-json", bad)
        assert result.returncode == 2, (bad, result.stderr)
    assert cluster.calls() == []


def test_serviceswitch_verify_endpoints(cluster):
    put_switch(cluster)
    cluster.put("west-b", "prod", "endpoints", "mysql", {
        "subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 3306}]}]})
    cluster.put("west-b", "prod", "endpoints", "empty", {"subsets": []})

    ok = switch(cluster, "--verify-endpoints", "prod/mysql", "--timeout", "5", "--interval", "0.1")
    empty = switch(cluster, "--verify-endpoints", "prod/empty", "--timeout", "0.3", "--interval", "0.1")

    assert ok.returncode == 0, ok.stderr
    assert "endpoints prod/mysql -> 10.1.2.3" in ok.stderr
    assert empty.returncode == 1
    assert "endpoints prod/empty has no ready address" in empty.stderr


def test_merge_patch_differences():
    obj = {"spec": {"a": 1, "b": {"c": True}, "l": [1, 2]}}
    assert merge_patch_differences(obj, {"spec": {"a": 1}}) == []
    assert merge_patch_differences(obj, {"spec": {"b": {"c": True}, "l": [1, 2]}}) == []
    assert merge_patch_differences(obj, {"spec": {"zzz": None}}) == []
    assert merge_patch_differences(obj, {"spec": {"a": None}}) == [".spec.a: 1 -> (removed)"]
    assert merge_patch_differences(obj, {"spec": {"b": {"c": 1}}}) == [".spec.b.c: true -> 1"]
    assert merge_patch_differences(obj, {"spec": {"l": [1]}}) == [".spec.l: [1, 2] -> [1]"]
    assert merge_patch_differences(obj, {"spec": {"a": {"x": 1}}}) == ['.spec.a: 1 -> {"x": 1}']
    assert merge_patch_differences(obj, {"status": {"x": "y"}}) == ['.status.x: (absent) -> "y"']


# --- mirrormaker --------------------------------------------------------------------

def mm(cluster: Cluster, action: str, *extra: str, ctx: str = "west-b",
       workload: str = "deployment/mirrormaker") -> Result:
    return cluster.run("mirrormaker", "--action", action, "--namespace", "kafka", "--workload", workload,
                       "--context", ctx, "--interval", "0.05", "--timeout", "10", *extra)


def test_mirrormaker_stop_then_start_roundtrip(cluster):
    cluster.put_workload("west-b", "kafka", "deployment", "mirrormaker", 3)

    stop = mm(cluster, "stop")
    assert stop.returncode == 0, stop.stderr
    dep = cluster.obj("west-b", "kafka", "deployment", "mirrormaker")
    assert dep["spec"]["replicas"] == 0
    assert dep["metadata"]["annotations"][REPLICAS_ANNOTATION] == "3"
    assert "stopped (was 3 replicas" in stop.stderr
    # it waited while pods were still there, and only then passed
    assert "[mirrormaker-stop] attempt 1: waiting: spec.replicas=0 status.replicas=3 pods=3" in stop.stderr
    assert ": ok: spec.replicas=0 status.replicas=0 pods=0" in stop.stderr
    assert "no pods left" in stop.stderr
    verbs = cluster.verbs()
    assert verbs.index("annotate") < verbs.index("scale")  # record before acting
    scale = next(c for c in cluster.calls() if "scale" in c)
    assert "--current-replicas=3" in scale and "--replicas=0" in scale

    cluster.clear_log()
    again = mm(cluster, "stop")
    assert again.returncode == 0, again.stderr
    assert "already stopped (recorded 3 replicas)" in again.stderr
    assert "annotate" not in cluster.verbs() and "scale" not in cluster.verbs()
    assert cluster.obj("west-b", "kafka", "deployment", "mirrormaker")["metadata"]["annotations"][
        REPLICAS_ANNOTATION] == "3"  # not overwritten with 0

    cluster.clear_log()
    start = mm(cluster, "start")
    assert start.returncode == 0, start.stderr
    assert cluster.obj("west-b", "kafka", "deployment", "mirrormaker")["spec"]["replicas"] == 3
    assert f"started (3 replicas from {REPLICAS_ANNOTATION})" in start.stderr
    # it waited for readiness
    assert "[mirrormaker-start] attempt 1: waiting: spec.replicas=3 status.replicas=0 ready=0 want=3" in start.stderr
    assert ": ok: spec.replicas=3 status.replicas=3 ready=3 want=3" in start.stderr
    assert "3 ready" in start.stderr

    cluster.clear_log()
    start_again = mm(cluster, "start")
    assert start_again.returncode == 0, start_again.stderr
    assert "already started (3 replicas)" in start_again.stderr
    assert "scale" not in cluster.verbs()


def test_mirrormaker_sibling_statefulset_by_context(cluster):
    cluster.put_workload("west-a", "kafka", "statefulset", "mm2", 2)
    cluster.put_workload("west-b", "kafka", "statefulset", "mm2", 2)

    result = mm(cluster, "stop", ctx="west-a", workload="sts/mm2")

    assert result.returncode == 0, result.stderr
    assert "statefulset/mm2 in kafka (context west-a)" in result.stderr
    assert cluster.obj("west-a", "kafka", "statefulset", "mm2")["spec"]["replicas"] == 0
    assert cluster.obj("west-b", "kafka", "statefulset", "mm2")["spec"]["replicas"] == 2
    assert all(c[c.index("--context") + 1] == "west-a" for c in cluster.calls())


def test_mirrormaker_start_with_explicit_replicas(cluster):
    cluster.put_workload("west-b", "kafka", "deployment", "mirrormaker", 0, {REPLICAS_ANNOTATION: "3"})

    result = mm(cluster, "start", "--replicas", "5")

    assert result.returncode == 0, result.stderr
    assert cluster.obj("west-b", "kafka", "deployment", "mirrormaker")["spec"]["replicas"] == 5
    assert "from --replicas" in result.stderr


def test_mirrormaker_start_without_record_fails_clearly(cluster):
    cluster.put_workload("west-b", "kafka", "deployment", "mirrormaker", 0)

    stop = mm(cluster, "stop")  # already at 0, nothing recorded: passes with a warning
    start = mm(cluster, "start")

    assert stop.returncode == 0, stop.stderr
    assert "start will need --replicas" in stop.stderr
    assert start.returncode == 1
    assert f"no {REPLICAS_ANNOTATION} annotation and no --replicas" in start.stderr
    assert "scale" not in cluster.verbs()


def test_mirrormaker_bad_recorded_count_fails(cluster):
    cluster.put_workload("west-b", "kafka", "deployment", "mirrormaker", 0, {REPLICAS_ANNOTATION: "lots"})
    result = mm(cluster, "start")
    assert result.returncode == 1
    assert "is not a number" in result.stderr


def test_mirrormaker_stop_is_bounded_and_resumable(cluster):
    cluster.put_workload("west-b", "kafka", "deployment", "mirrormaker", 4)
    cluster.configure(settle_reads=10_000)  # pods never go away

    stuck = mm(cluster, "stop", "--timeout", "0.5")
    assert stuck.returncode == 1
    assert "mirrormaker-stop did not pass within 0.5s" in stuck.stderr
    assert "pods=4" in stuck.stderr
    assert cluster.obj("west-b", "kafka", "deployment", "mirrormaker")["metadata"]["annotations"][
        REPLICAS_ANNOTATION] == "4"

    cluster.configure(settle_reads=1)
    dep = cluster.obj("west-b", "kafka", "deployment", "mirrormaker")
    dep["metadata"]["annotations"]["standin/pending-reads"] = "1"
    cluster.put("west-b", "kafka", "deployment", "mirrormaker", dep)
    cluster.clear_log()
    rerun = mm(cluster, "stop")
    assert rerun.returncode == 0, rerun.stderr
    assert "scale" not in cluster.verbs()
    assert cluster.obj("west-b", "kafka", "deployment", "mirrormaker")["metadata"]["annotations"][
        REPLICAS_ANNOTATION] == "4"


def test_mirrormaker_scale_failure_is_reported(cluster):
    cluster.put_workload("west-b", "kafka", "deployment", "mirrormaker", 2)
    cluster.fail("scale", "Error from server (Forbidden): cannot scale")

    result = mm(cluster, "stop")

    assert result.returncode == 1
    assert "`kubectl scale deployment/mirrormaker --current-replicas=2 --replicas=0`" in result.stderr
    assert "Forbidden" in result.stderr
    # the count was recorded before the failed scale, so a retry still knows it
    assert cluster.obj("west-b", "kafka", "deployment", "mirrormaker")["metadata"]["annotations"][
        REPLICAS_ANNOTATION] == "2"


def test_mirrormaker_usage_errors(cluster):
    assert mm(cluster, "stop", workload="cronjob/x").returncode == 2
    assert mm(cluster, "stop", workload="mirrormaker").returncode == 2
    assert mm(cluster, "pause").returncode == 2
    assert cluster.calls() == []
    cluster.put_workload("west-b", "kafka", "deployment", "mirrormaker", 2)
    replicas_on_stop = mm(cluster, "stop", "--replicas", "3")
    assert replicas_on_stop.returncode == 1
    assert "--replicas applies to --action start only" in replicas_on_stop.stderr


def test_label_selector():
    assert label_selector({"matchLabels": {"b": "2", "a": "1"}}) == "a=1,b=2"
    assert label_selector({"matchLabels": {"app": "mm"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["x", "y"]},
        {"key": "canary", "operator": "DoesNotExist"}]}) == "app=mm,tier in (x,y),!canary"
    with pytest.raises(Exception, match="empty"):
        label_selector({"matchLabels": {}})
