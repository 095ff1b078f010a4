"""Preflight gates against a stand-in kubectl printing real-shaped output."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from kubehop.gates import cli
from kubehop.gates.preflight import blocking_budgets, deprecated_requests

METRICS = """# HELP apiserver_request_total [STABLE] Counter of apiserver requests
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 1234
# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested
# TYPE apiserver_requested_deprecated_apis gauge
apiserver_requested_deprecated_apis{group="storage.k8s.io",removed_release="1.27",resource="csistoragecapacities",subresource="",version="v1beta1"} 1
apiserver_requested_deprecated_apis{group="flowcontrol.apiserver.k8s.io",removed_release="1.29",resource="flowschemas",subresource="",version="v1beta2"} 1
"""


def pdb(ns: str, name: str, expected: int, allowed: int, healthy: int, desired: int) -> dict:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": ns, "uid": f"{ns}-{name}", "resourceVersion": "1"},
            "spec": {"minAvailable": desired, "selector": {"matchLabels": {"app": name}}},
            "status": {"currentHealthy": healthy, "desiredHealthy": desired, "disruptionsAllowed": allowed,
                       "expectedPods": expected, "observedGeneration": 1}}


@pytest.fixture
def kubectl(tmp_path: Path, monkeypatch):
    """A kubectl on PATH that answers from files the test writes, and logs its argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "metrics.txt").write_text(METRICS)
    (tmp_path / "pdbs.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                                                    "items": [pdb("prod", "web", 3, 1, 3, 2)]}))
    script = bin_dir / "kubectl"
    script.write_text(f"""#!/usr/bin/env bash
echo "$*" >> {tmp_path}/argv.log
[[ -f {tmp_path}/fail ]] && {{ echo "Unable to connect to the server" >&2; exit 1; }}
case "$*" in
  *"get --raw /metrics"*) cat {tmp_path}/metrics.txt ;;
  *"get poddisruptionbudgets --all-namespaces --output json"*) cat {tmp_path}/pdbs.json ;;
  *) echo "unexpected: $*" >&2; exit 3 ;;
esac
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return tmp_path


def gate(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main([*argv, "--timeout", "0.5", "--interval", "0.1"])
    return code, capsys.readouterr().err


def test_deprecated_requests_are_found_per_release():
    assert deprecated_requests(METRICS, "1.27") == ["storage.k8s.io/v1beta1 csistoragecapacities"]
    assert deprecated_requests(METRICS, "1.29") == ["flowcontrol.apiserver.k8s.io/v1beta2 flowschemas"]
    assert deprecated_requests(METRICS, "1.28") == []


def test_deprecated_apis_gate_fails_naming_the_api(kubectl, capsys):
    code, err = gate(capsys, "deprecated-apis", "--removed-in", "1.27")
    assert code == 1 and "storage.k8s.io/v1beta1 csistoragecapacities" in err
    code, err = gate(capsys, "deprecated-apis", "--removed-in", "1.28")
    assert code == 0, err


def test_deprecated_apis_gate_fails_closed(kubectl, capsys):
    (kubectl / "metrics.txt").write_text("# not an apiserver\nup 1\n")
    code, err = gate(capsys, "deprecated-apis", "--removed-in", "1.28")
    assert code == 1 and "not a kube-apiserver" in err
    (kubectl / "fail").write_text("")
    code, err = gate(capsys, "deprecated-apis", "--removed-in", "1.28")
    assert code == 1 and "Unable to connect" in err


def test_bad_minor_is_an_argument_error(kubectl):
    with pytest.raises(SystemExit) as exc:
        cli.main(["deprecated-apis", "--removed-in", "v1.27.3"])
    assert exc.value.code == 2


def test_blocking_budgets():
    pdbs = [pdb("prod", "web", 3, 1, 3, 2), pdb("prod", "mysql", 1, 0, 1, 1), pdb("prod", "idle", 0, 0, 0, 1)]
    assert blocking_budgets(pdbs, set()) == ["prod/mysql (healthy 1/1, 0 disruptions allowed)"]
    assert blocking_budgets(pdbs, {"prod/mysql"}) == []


def test_pdbs_gate(kubectl, capsys):
    code, err = gate(capsys, "pdbs")
    assert code == 0, err
    (kubectl / "pdbs.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
                                                   "items": [pdb("prod", "web", 3, 1, 3, 2), pdb("prod", "kafka", 3, 0, 3, 3)]}))
    code, err = gate(capsys, "pdbs")
    assert code == 1 and "prod/kafka" in err and "prod/web" not in err.split("FAILED")[-1]
    code, err = gate(capsys, "pdbs", "--ignore", "prod/kafka")
    assert code == 0, err
    (kubectl / "fail").write_text("")
    code, err = gate(capsys, "pdbs")
    assert code == 1
