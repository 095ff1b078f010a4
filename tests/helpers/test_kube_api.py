"""The loopback API server answers every real kubectl (1.27 ... 1.33) for the calls the gates make.

Requests seen per version were observed, not assumed: kubectl GETs an object before
`annotate`/`patch` (a merge patch for both), and `scale --current-replicas` GETs the
scale subresource then PUTs it (k8s.io/kubectl/pkg/scale ScaleSimple with a precondition).
"""
from __future__ import annotations

import subprocess

import pytest

from tests.helpers.kube_api import KUBECTL_MINORS, kubectl_binary, label_matches, field_matches

pytestmark = pytest.mark.skipif(not KUBECTL_MINORS, reason="no kubectl.1.NN (scripts/install-test-deps.sh says how)")

DEPLOY = {"kind": "Deployment", "apiVersion": "apps/v1",
          "metadata": {"name": "mm", "namespace": "kafka", "generation": 1},
          "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "mm"}}}, "status": {"replicas": 2}}
POD = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p1", "namespace": "kafka", "labels": {"app": "mm"}},
       "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "x"}]}, "status": {"phase": "Running"}}
OTHER = {**POD, "metadata": {"name": "p2", "namespace": "kafka", "labels": {"app": "other"}},
         "spec": {"nodeName": "n2", "containers": [{"name": "c", "image": "x"}]}}


def run(api, minor, *args):
    return subprocess.run([kubectl_binary(minor), "--kubeconfig", str(api.kubeconfig), "--request-timeout=5s", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_every_kubectl_reads_selects_and_writes(kube_api, minor):
    api = kube_api("west-a", minor=minor)
    api.load(DEPLOY, POD, OTHER)
    got = run(api, minor, "get", "pods", "-n", "kafka", "-l", "app in (mm)", "--field-selector", "spec.nodeName=n1",
              "-o", "json")
    assert got.returncode == 0, got.stderr
    assert '"p1"' in got.stdout and '"p2"' not in got.stdout
    (listed,) = api.calls("GET", "/api/v1/namespaces/kafka/pods")
    assert listed.query["labelSelector"] == "app in (mm)" and listed.query["fieldSelector"] == "spec.nodeName=n1"

    assert run(api, minor, "annotate", "--overwrite", "-n", "kafka", "deployment/mm", "k/v=2").returncode == 0
    scaled = run(api, minor, "scale", "-n", "kafka", "deployment/mm", "--current-replicas=2", "--replicas=0")
    assert scaled.returncode == 0, scaled.stderr
    patched = run(api, minor, "patch", "-n", "kafka", "deployment", "mm", "--type", "merge", "-p", '{"spec":{"paused":true}}')
    assert patched.returncode == 0, patched.stderr
    obj = api.get("Deployment", "mm", "kafka")
    assert obj["metadata"]["annotations"] == {"k/v": "2"}
    assert obj["spec"]["replicas"] == 0 and obj["spec"]["paused"] is True
    assert [(w.method, w.path.rsplit("/", 1)[-1]) for w in api.writes()] == [
        ("PATCH", "mm"), ("PUT", "scale"), ("PATCH", "mm")]
    assert api.writes()[0].content_type == api.writes()[2].content_type == "application/merge-patch+json"
    # a stale precondition is refused the way kubectl refuses it
    stale = run(api, minor, "scale", "-n", "kafka", "deployment/mm", "--current-replicas=5", "--replicas=1")
    assert stale.returncode != 0 and "Expected replicas to be 5, was 0" in stale.stderr


@pytest.mark.parametrize("minor", KUBECTL_MINORS)
def test_exec_websocket_v5_or_spdy_refused(kube_api, minor):
    api = kube_api("west-a", minor=minor)
    api.load(POD)
    api.exec_handler = lambda ns, pod, container, cmd: (3 if cmd[-1] == "fail" else 0, "out\n", "")
    ok = run(api, minor, "exec", "-n", "kafka", "p1", "--", "probe", "pass")
    bad = run(api, minor, "exec", "-n", "kafka", "p1", "--", "probe", "fail")
    if minor >= 30:  # kubectl 1.30+: WebSocket remotecommand by default (KEP-4006)
        assert (ok.returncode, ok.stdout) == (0, "out\n"), ok.stderr
        assert bad.returncode == 3 and "command terminated with exit code 3" in bad.stderr
        assert api.calls("GET", "/api/v1/namespaces/kafka/pods/p1/exec")[0].query["command"] == "pass"
    else:  # SPDY only: refused, the gate sees a failed probe (fail closed)
        assert ok.returncode == 1 and "WebSocket" in ok.stderr


def test_kubeconfig_identity_is_the_server(kube_api):
    a, b = kube_api("west-a"), kube_api("west-b")
    a.load(POD)
    assert run(b, KUBECTL_MINORS[-1], "get", "pods", "-n", "kafka", "p1", "-o", "json").returncode == 1
    assert a.calls() == []
    assert [str(r).split("?")[0] for r in b.calls()][0] == "GET /api/v1/namespaces/kafka/pods/p1"


def test_selectors_follow_the_apimachinery_grammar():
    labels = {"app": "mm", "tier": "x"}
    assert label_matches("app=mm,tier", labels) and label_matches("app==mm,!gone", labels)
    assert not label_matches("app!=mm", labels) and not label_matches("app notin (mm,y)", labels)
    assert label_matches("app in (y, mm)", labels) and not label_matches("gone", labels)
    assert field_matches("spec.nodeName=n1,status.phase!=Failed", POD)
    assert not field_matches("metadata.name=p2", POD)
