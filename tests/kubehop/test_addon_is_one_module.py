"""Adding an addon is adding one module: a copy of the checkout with one new file in
kubehop/addons/ plans, validates, installs and checks the new addon, and nothing
else was edited."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.plan_helpers import ROOT

METRICS_SERVER = '''"""metrics-server (kubernetes-sigs/metrics-server charts/metrics-server): a test addon."""
from kubehop.addons.base import AddonGate, AddonSpec, ChartPin, GateFlag, Line

MINORS = ("1.26", "1.27", "1.28", "1.29", "1.30", "1.31", "1.32")

SPEC = AddonSpec(
    name="metrics-server", chart="metrics-server", repo="https://kubernetes-sigs.github.io/metrics-server/",
    namespace="kube-system", release="metrics-server", image_repository=None,
    per_minor={m: ChartPin("3.12.2", None, ("3.12.0", "3.12.2")) for m in MINORS},
    lines=(Line("3.12.0", "3.12.2", ("1.26", "1.32")),),
    source="test", depends_on=("aws-cloud-controller-manager",),
    risk="low", impact="kubectl top and HPAs.",
    workloads=lambda release, values: [f"deployment/{release}"],
    values=lambda cfg, image_tag: {},
    check=lambda cfg, addon, release, values, pin: ["--namespace", "kube-system", "--workload", f"deployment/{release}"],
    # its own check and flag, in this module too
    gate=AddonGate(check=lambda k, args, pods: [f"metrics-server: wants {args.min_nodes} nodes in metrics.k8s.io"],
                   summary="; metrics API served", flags=(GateFlag("--min-nodes", 1, {"type": int}),)),
)
'''


def _copy(tmp_path: Path) -> Path:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    dest = tmp_path / "kubehop-copy"
    for name in files:
        if not name.startswith("tests/"):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


def test_a_new_addon_module_is_all_it_takes(tmp_path):
    copy = _copy(tmp_path)
    (copy / "kubehop" / "addons" / "metrics_server.py").write_text(METRICS_SERVER)
    plan = subprocess.run([sys.executable, "-m", "kubehop", "plan", "--stack", "prod-b", "--to", "1.27", "--json"],
                          cwd=copy, capture_output=True, text=True, timeout=300)
    assert plan.returncode == 0, plan.stderr
    adopt = json.loads(plan.stdout)["stages"][0]
    steps = {(s["action"], s["target"]): s for s in adopt["steps"]}
    release, check = steps[("addon", "metrics-server")], steps[("addon-check", "metrics-server")]
    assert release["op"] == "create" and release["inputs"]["version"] == "3.12.2"  # not adopted: installed
    ccm_check = steps[("addon-check", "aws-cloud-controller-manager")]["id"]
    assert ccm_check in release["dependsOn"]
    assert "--addon metrics-server" in check["inputs"]["create"]
    # the gate takes the new name and runs the common checks
    gate = subprocess.run([sys.executable, "-m", "kubehop", "gate", "addon-check", "--addon", "metrics-server",
                           "--namespace", "kube-system", "--workload", "deployment/metrics-server",
                           "--kubectl", "/nonexistent/kubectl", "--timeout", "0", "--interval", "0"],
                          cwd=copy, capture_output=True, text=True, timeout=60)
    assert gate.returncode == 1 and "kubectl binary not found" in gate.stderr, gate.stderr
    assert "metrics-server: wants 1 nodes in metrics.k8s.io" in gate.stderr  # its own check ran, default filled
    wrong = subprocess.run([sys.executable, "-m", "kubehop", "gate", "addon-check", "--addon", "generic",
                            "--namespace", "kube-system", "--workload", "deployment/x", "--min-nodes", "2"],
                           cwd=copy, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "--min-nodes applies to metrics-server, not generic" in wrong.stderr
    # config knows it: a bad pin for it is a config error naming its key
    data = (copy / "Pulumi.prod-b.yaml").read_text().replace(
        "  kubehop:addons:\n", "  kubehop:addons:\n    metrics-server: {chartVersion: \"3.1.0\"}\n", 1)
    (copy / "Pulumi.prod-b.yaml").write_text(data)
    bad = subprocess.run([sys.executable, "-m", "kubehop", "plan", "--stack", "prod-b"], cwd=copy,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "kubehop:addons.metrics-server.chartVersion" in bad.stderr, bad.stderr
