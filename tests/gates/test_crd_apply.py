"""`crd-apply` with the real kubectl against the loopback API server, applying
Calico's real `operator-crds.yaml` (tests/fixtures/calico) over CRDs that Helm
installed from the chart's crds/ at the running version.

Why the step exists: Helm installs a chart's crds/ on `helm install` only and
never upgrades them ("There is no support at this time for upgrading or
deleting CRDs using Helm", helm.sh/docs/chart_best_practices/custom_resource_definitions/;
helm/helm pkg/action/install.go installCRDs runs on install, upgrade.go has no
CRD step). Tigera's upgrade procedure therefore server-side applies the target
version's operator-crds.yaml with --force-conflicts first (tigera/docs
operations/upgrading/kubernetes-upgrade): the fields Helm's install wrote are
owned by Helm's field manager, so without --force-conflicts the apply is refused.
"""
from __future__ import annotations

import copy
import functools
import gzip
import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml

from kubehop.addons import calico
from kubehop.gates import cli
from tests.helpers import loopback_http
from tests.helpers.kube_api import KUBECTL_MINORS, kubectl_binary, kubectl_env
from tests.helpers.kube_apply import APPLY, ApplyKubeAPI

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "calico"
# kubectl 1.29+ asks OpenAPI v3 whether the server validates fields; 1.27/1.28 ask OpenAPI v2,
# which is protobuf and not served by the loopback server (tests/helpers/kube_apply.py)
APPLY_MINORS = tuple(m for m in KUBECTL_MINORS if m >= 29)
pytestmark = pytest.mark.skipif(not APPLY_MINORS, reason="no kubectl.1.29+ (scripts/install-test-deps.sh says how)")


@functools.cache
def manifest(version: str) -> bytes:
    return gzip.decompress((FIXTURES / f"operator-crds-v{version}.yaml.gz").read_bytes())


def crds(version: str) -> list[dict]:
    return copy.deepcopy(_crds(version))


@functools.cache
def _crds(version: str) -> list[dict]:
    return [d for d in yaml.load_all(manifest(version), Loader=yaml.CSafeLoader)
            if d and d.get("kind") == "CustomResourceDefinition"]


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """A loopback cluster whose Calico CRDs Helm installed at 3.28.5 (the running release)."""
    for key, value in kubectl_env(tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    api = ApplyKubeAPI("prod-b", tmp_path / "kube", minor=30).start()
    api.load_owned("helm", *crds("3.28.5"))
    yield api
    api.stop()


@pytest.fixture
def served():
    """A loopback HTTPS stand-in for raw.githubusercontent.com: path -> bytes."""
    files: dict[str, bytes] = {}

    class Handler(loopback_http.Handler):
        def do_GET(self):  # noqa: N802
            body = files.get(self.path)
            self.reply(200 if body is not None else 404, body or b"")

    server = loopback_http.start(Handler)
    yield files, loopback_http.url(server)
    loopback_http.stop(server)


def crd_apply(capsys, api, url: str, sha256: str, minor: int) -> tuple[int, str, str]:
    code = cli.main(["crd-apply", "--url", url, "--sha256", sha256, "--kubectl", kubectl_binary(minor),
                     "--kubeconfig", str(api.kubeconfig), "--timeout", "120"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_fixtures_are_the_manifests_the_catalog_pins():
    for version in ("3.28.5", "3.29.7"):
        assert hashlib.sha256(manifest(version)).hexdigest() == calico.CRD_SHA256[version]
        assert calico.SPEC.crds[version].url.endswith(f"/v{version}/manifests/operator-crds.yaml")
    new = {c["metadata"]["name"] for c in crds("3.29.7")} - {c["metadata"]["name"] for c in crds("3.28.5")}
    assert new == {"tiers.crd.projectcalico.org", "adminnetworkpolicies.policy.networking.k8s.io"}


@pytest.mark.parametrize("minor", APPLY_MINORS)
def test_crd_apply_brings_helms_crds_to_the_target_version(cluster, served, capsys, minor):
    files, base = served
    files["/v3.29.7/manifests/operator-crds.yaml"] = manifest("3.29.7")
    url = base + "/v3.29.7/manifests/operator-crds.yaml"
    code, out, err = crd_apply(capsys, cluster, url, calico.CRD_SHA256["3.29.7"], minor)
    assert code == 0, err
    assert "(24 objects)" in err and out.startswith("kubehop-record ")
    for crd in crds("3.29.7"):
        stored = cluster.get("CustomResourceDefinition", crd["metadata"]["name"])
        assert stored["spec"] == crd["spec"], crd["metadata"]["name"]
        managers = {e["manager"]: e["operation"] for e in stored["metadata"]["managedFields"]}
        assert managers.get("kubehop") == "Apply", crd["metadata"]["name"]
    patches = cluster.calls("PATCH")
    assert len(patches) == 24 and {p.content_type for p in patches} == {APPLY}
    assert {(p.query.get("fieldManager"), p.query.get("force")) for p in patches} == {("kubehop", "true")}
    # resumable and idempotent: a second run passes and writes nothing new
    versions = {k: o["metadata"]["resourceVersion"] for k, o in cluster.objects.items()}
    code, _, err = crd_apply(capsys, cluster, url, calico.CRD_SHA256["3.29.7"], minor)
    assert code == 0, err
    assert {k: o["metadata"]["resourceVersion"] for k, o in cluster.objects.items()} == versions


def test_without_force_conflicts_helms_fields_refuse_the_apply(cluster):
    """What --force-conflicts is for: the same apply without it conflicts with Helm's manager."""
    minor = APPLY_MINORS[-1]
    proc = subprocess.run([kubectl_binary(minor), "--kubeconfig", str(cluster.kubeconfig), "apply", "--server-side",
                           "--field-manager=kubehop", "-f", "-"], input=manifest("3.29.7").decode(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert 'conflict with "helm"' in proc.stderr
    # the two CRDs Helm never installed have no other owner: those were created
    assert cluster.get("CustomResourceDefinition", "tiers.crd.projectcalico.org")


def test_a_checksum_mismatch_applies_nothing(cluster, served, capsys):
    files, base = served
    files["/v3.29.7/manifests/operator-crds.yaml"] = manifest("3.29.7") + b"\n# tampered\n"
    code, out, err = crd_apply(capsys, cluster, base + "/v3.29.7/manifests/operator-crds.yaml",
                               calico.CRD_SHA256["3.29.7"], APPLY_MINORS[-1])
    assert code == 1 and "checksum mismatch" in err and out == ""
    assert cluster.calls("PATCH") == []
