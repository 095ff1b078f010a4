"""Cutover actions (`serviceswitch`, `mirrormaker`): the real kubectl against loopback API servers.

Each cluster (west-a, west-b) is its own server with its own kubeconfig (tests/helpers/kube_api.py),
as production passes one kubeconfig per cluster and no --context. A small controller on each
server plays the workload controllers: a scale shows in status, and pods come and go, only
after a few requests, so the actions must wait.
"""
from __future__ import annotations

import copy
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

from kubehop.gates import cli
from kubehop.gates.cutover import (
    REPLICAS_ANNOTATION,
    label_selector,
    merge_patch_differences,
)
from tests.helpers.kube_api import KUBECTL_MINORS, ApiError, Resource, kubectl_binary, kubectl_env

pytestmark = pytest.mark.skipif(not KUBECTL_MINORS, reason="no kubectl.1.NN (scripts/install-test-deps.sh says how)")
MINOR = 29
SERVICESWITCH = Resource("serviceswitches", "ServiceSwitch", "ops.example.com", builtin=False)
KINDS = {"deployment": "Deployment", "statefulset": "StatefulSet", "serviceswitch": "ServiceSwitch",
         "serviceswitches.ops.example.com": "ServiceSwitch", "endpoints": "Endpoints"}


class Controller:
    """What the Deployment/StatefulSet controllers do, slowly: `settle_reads` requests after a
    scale, status follows spec and the workload's pods match the replica count."""

    def __init__(self, settle_reads: int = 4):
        self.settle_reads = settle_reads
        self.pending: dict[tuple[str, str, str], int] = {}

    def __call__(self, api) -> None:
        for kind in ("Deployment", "StatefulSet"):
            res = api.resource_for(kind)
            for key, obj in list(api.objects.items()):
                if key[0] != f"{res.plural}.{res.group}":
                    continue
                spec, status = obj["spec"].get("replicas", 1), obj.get("status") or {}
                if spec == status.get("replicas") and obj["metadata"]["generation"] == status.get("observedGeneration"):
                    continue
                left = self.pending.get(key, self.settle_reads) - 1
                self.pending[key] = left
                if left <= 0:
                    del self.pending[key]
                    self.settle(api, obj)

    @staticmethod
    def settle(api, obj: dict) -> None:
        n = obj["spec"].get("replicas", 1)
        meta = obj["metadata"]
        obj["status"] = {"replicas": n, "readyReplicas": n, "availableReplicas": n, "updatedReplicas": n,
                         "observedGeneration": meta["generation"]}
        labels = obj["spec"]["template"]["metadata"]["labels"]
        pod = api.resource_for("Pod")
        for key in [k for k, o in api.objects.items() if k[0] == f"{pod.plural}." and k[1] == meta["namespace"]
                    and o["metadata"].get("labels") == labels]:
            del api.objects[key]
        api.load(*({"kind": "Pod", "apiVersion": "v1", "metadata": {
            "name": f"{meta['name']}-{i}", "namespace": meta["namespace"], "labels": labels},
            "spec": {"containers": [{"name": "mm", "image": "mm"}]}, "status": {"phase": "Running"}}
            for i in range(n)))


class Cluster:
    """Two loopback clusters, west-a and west-b, and the gate CLI run with a real kubectl."""

    def __init__(self, kube_api, tmp_path: Path):
        self.kubectl = kubectl_binary(MINOR)
        self.home = tmp_path / "home"
        self.controller = Controller()
        self.apis = {}
        for ctx in ("west-a", "west-b"):
            api = kube_api(ctx, minor=MINOR)
            api.add_resource(SERVICESWITCH)
            api.on_request.append(self.controller)
            for ns in ("prod", "kafka"):
                api._ensure_namespace(ns)
            self.apis[ctx] = api

    def configure(self, settle_reads: int | None = None, ignore_patches: bool = False) -> None:
        if settle_reads is not None:
            self.controller.settle_reads = settle_reads
        if ignore_patches:  # an operator or webhook undoes every change to a ServiceSwitch
            for api in self.apis.values():
                kept = {k: copy.deepcopy(o["spec"]) for k, o in api.objects.items() if o.get("kind") == "ServiceSwitch"}

                def undo(api, res, obj, kept=kept):
                    key = api._key(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
                    if key in kept:
                        obj["spec"] = copy.deepcopy(kept[key])
                api.on_write.append(undo)

    def fail(self, method: str, message: str, code: int = 403, reason: str = "Forbidden") -> None:
        for api in self.apis.values():
            api.refusals[method] = ApiError(code, reason, message)

    def put(self, ctx: str, ns: str, kind: str, name: str, obj: dict) -> None:
        obj = dict(obj, kind=KINDS[kind])
        if obj["kind"] == "ServiceSwitch":
            obj["apiVersion"] = "ops.example.com/v1"
        obj["metadata"] = dict(obj.get("metadata") or {}, name=name, namespace=ns)
        self.apis[ctx].load(obj)

    def obj(self, ctx: str, ns: str, kind: str, name: str) -> dict:
        return self.apis[ctx].get(KINDS[kind], name, ns)

    def put_workload(self, ctx: str, ns: str, kind: str, name: str, replicas: int, annotations=None) -> None:
        labels = {"app": name}
        self.put(ctx, ns, kind, name, {
            "apiVersion": "apps/v1",
            "metadata": {"generation": 1, "annotations": dict(annotations or {})},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}}},
            "status": {"replicas": replicas, "readyReplicas": replicas, "observedGeneration": 1},
        })
        api = self.apis[ctx]
        Controller.settle(api, api.objects[api._key(api.resource_for(KINDS[kind]), ns, name)])

    def writes(self, ctx: str = "west-b") -> list[str]:
        """What each write to the cluster was: patch, annotate (a patch of annotations only) or scale."""
        out = []
        for req in self.apis[ctx].writes():
            if req.path.endswith("/scale"):
                out.append("scale")
            elif req.method == "PATCH":
                out.append("annotate" if set(req.json) == {"metadata"} else "patch")
            else:
                out.append(req.method)
        return out

    def kubeconfig(self, ctx: str = "west-b") -> str:
        return f"kubeconfig {self.apis[ctx].kubeconfig}"

    def requests(self, ctx: str = "west-b"):
        return self.apis[ctx].calls()

    def clear_log(self) -> None:
        for api in self.apis.values():
            api.requests.clear()

    def argv(self, args: tuple[str, ...]) -> list[str]:
        args = list(args)
        if "--context" in args:  # which cluster: its own kubeconfig, as production passes it
            i = args.index("--context")
            ctx = args[i + 1]
            args[i:i + 2] = ["--kubeconfig", str(self.apis[ctx].kubeconfig)]
        return [*args, "--kubectl", self.kubectl]

    def run(self, *args: str) -> Result:
        """The CLI in this process (fast)."""
        try:
            rc = cli.main(self.argv(args))
        except SystemExit as exc:  # argparse usage errors
            rc = exc.code
        captured = self.capsys.readouterr()
        return Result(rc, captured.out, captured.err)

    def run_subprocess(self, *args: str, timeout: float = 60) -> Result:
        """`python -m kubehop gate ...` end to end, as the Pulumi step runs it."""
        done = subprocess.run(
            [sys.executable, "-m", "kubehop", "gate", *self.argv(args)],
            check=False, cwd=REPO, env=kubectl_env(self.home), capture_output=True, text=True, timeout=timeout,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


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
    assert f"serviceswitch/mysql in prod ({cluster.kubeconfig()}): switched" in first.stderr
    assert ".spec.active: \"prod-b\" -> \"prod-a\"" in first.stderr
    assert cluster.obj("west-b", "prod", "serviceswitch", "mysql")["spec"] == {
        "active": "prod-a", "service": "mysql", "ports": [3306]}
    (patch,) = cluster.apis["west-b"].writes()
    assert patch.path == "/apis/ops.example.com/v1/namespaces/prod/serviceswitches/mysql"
    assert patch.content_type == "application/merge-patch+json" and patch.json == {"spec": {"active": "prod-a"}}
    # read, act (kubectl patch reads first), verify
    assert [r.method for r in cluster.requests()] == ["GET", "GET", "PATCH", "GET"]
    # the other cluster was never asked, and its object is untouched
    assert cluster.requests("west-a") == []
    assert cluster.obj("west-a", "prod", "serviceswitch", "mysql")["spec"]["active"] == "prod-b"

    cluster.clear_log()
    second = switch(cluster)
    assert second.returncode == 0, second.stderr
    assert "already switched" in second.stderr
    assert [r.method for r in cluster.requests()] == ["GET"]


def test_serviceswitch_spec_json_shorthand_and_resource_name(cluster):
    cluster.put("west-b", "prod", "serviceswitches.ops.example.com", "mysql", {
        "metadata": {"generation": 1}, "spec": {"active": "prod-b", "old": 1}})

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
    assert f"`kubectl get serviceswitch mysql -o json` ({cluster.kubeconfig()}) failed with exit 1" in result.stderr
    assert 'serviceswitches.ops.example.com "mysql" not found' in result.stderr


def test_serviceswitch_kubectl_error_is_reported(cluster):
    put_switch(cluster)
    cluster.fail("PATCH", 'serviceswitches.ops.example.com "mysql" is forbidden: User "ci" cannot patch resource')

    result = switch(cluster)

    assert result.returncode == 1
    assert "`kubectl patch serviceswitch mysql --type merge" in result.stderr
    assert "Forbidden" in result.stderr
    assert cluster.obj("west-b", "prod", "serviceswitch", "mysql")["spec"]["active"] == "prod-b"


def test_serviceswitch_hung_kubectl_is_bounded(cluster):
    put_switch(cluster)
    for api in cluster.apis.values():
        api.delay = 30

    start = time.monotonic()
    result = switch(cluster, "--request-timeout", "0.5")
    elapsed = time.monotonic() - start

    assert result.returncode == 1
    # kubectl gives up by itself after --request-timeout; the gate's backstop (0.5 + 1 s) is the net under it
    assert f"`kubectl get serviceswitch mysql -o json` ({cluster.kubeconfig()})" in result.stderr
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
    assert cluster.requests() == []


def test_serviceswitch_verify_endpoints(cluster):
    put_switch(cluster)
    cluster.put("west-b", "prod", "endpoints", "mysql", {"apiVersion": "v1",
                "subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 3306}]}]})
    cluster.put("west-b", "prod", "endpoints", "empty", {"apiVersion": "v1", "subsets": []})

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
    assert cluster.writes() == ["annotate", "scale"]  # record before acting
    scale = cluster.apis["west-b"].writes()[1]
    # --current-replicas=3: kubectl sends the resourceVersion it read with the 3 (a precondition)
    assert scale.method == "PUT" and scale.json["spec"].get("replicas", 0) == 0  # Go omitempty drops a 0
    assert scale.json["metadata"]["resourceVersion"]

    cluster.clear_log()
    again = mm(cluster, "stop")
    assert again.returncode == 0, again.stderr
    assert "already stopped (recorded 3 replicas)" in again.stderr
    assert cluster.writes() == []
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
    assert cluster.writes() == []


def test_mirrormaker_sibling_statefulset_by_context(cluster):
    cluster.put_workload("west-a", "kafka", "statefulset", "mm2", 2)
    cluster.put_workload("west-b", "kafka", "statefulset", "mm2", 2)

    result = mm(cluster, "stop", ctx="west-a", workload="sts/mm2")

    assert result.returncode == 0, result.stderr
    assert f"statefulset/mm2 in kafka ({cluster.kubeconfig('west-a')})" in result.stderr
    assert cluster.obj("west-a", "kafka", "statefulset", "mm2")["spec"]["replicas"] == 0
    assert cluster.obj("west-b", "kafka", "statefulset", "mm2")["spec"]["replicas"] == 2
    assert cluster.writes("west-a") == ["annotate", "scale"] and cluster.requests("west-b") == []


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
    assert cluster.writes() == []


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
    cluster.controller.pending.clear()
    cluster.clear_log()
    rerun = mm(cluster, "stop")
    assert rerun.returncode == 0, rerun.stderr
    assert cluster.writes() == []
    assert cluster.obj("west-b", "kafka", "deployment", "mirrormaker")["metadata"]["annotations"][
        REPLICAS_ANNOTATION] == "4"


def test_mirrormaker_scale_failure_is_reported(cluster):
    cluster.put_workload("west-b", "kafka", "deployment", "mirrormaker", 2)
    cluster.fail("PUT", 'deployments.apps "mirrormaker" is forbidden: User "ci" cannot update resource "deployments/scale"')

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
    assert cluster.requests() == []
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
