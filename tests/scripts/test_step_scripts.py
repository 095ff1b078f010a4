"""The small scripts the components run locally: run for real with stand-ins."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALL_SCRIPTS = sorted(
    [*ROOT.glob("components/scripts/*.sh"), *ROOT.glob("components/scripts/*/*.sh"),
     *ROOT.glob("packer/scripts/*.sh"), *ROOT.glob("scripts/*.sh")])


def standin(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_every_shell_script_is_shellcheck_clean():
    assert shutil.which("shellcheck"), "shellcheck is missing: `make test` installs it (scripts/install-test-deps.sh)"
    assert len(ALL_SCRIPTS) >= 15
    result = subprocess.run(["shellcheck", "-x", *map(str, ALL_SCRIPTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_script_is_strict():
    for path in ALL_SCRIPTS:
        lines = path.read_text().splitlines()
        assert lines[0] == "#!/usr/bin/env bash", path
        code = [line for line in lines[1:] if line.strip() and not line.lstrip().startswith("#")]
        assert code[0].startswith("set -euo pipefail"), f"{path}: first command is {code[0]!r}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the scripts' part of the tree with a stand-in interpreter."""
    copy = tmp_path / "project"
    shutil.copytree(ROOT / "components" / "scripts", copy / "components" / "scripts")
    (copy / ".venv" / "bin").mkdir(parents=True)
    # records argv, the kubeconfig it was given (path, mode, content) and the environment
    standin(copy / ".venv" / "bin", "python", f"""
out={tmp_path}/gate-call.json
python3 - "$@" <<'PY' > "$out"
import json, os, stat, sys
path = os.environ.get("KUBECONFIG")
info = {{"argv": sys.argv[1:], "kubeconfig": path,
        "kubeconfig_data_env": os.environ.get("KUBEHOP_KUBECONFIG_DATA")}}
if path:
    info["mode"] = oct(stat.S_IMODE(os.stat(path).st_mode))
    info["content"] = open(path).read()
print(json.dumps(info))
PY
exit "${{GATE_EXIT:-0}}"
""")
    return copy


def test_run_gate_hands_the_kubeconfig_through_a_private_file(project, tmp_path):
    secret = "apiVersion: v1\nkind: Config\nusers: [{name: admin, user: {token: s3cr3t-token}}]"
    env = {**os.environ, "KUBEHOP_KUBECONFIG_DATA": secret}
    result = subprocess.run(["bash", str(project / "components/scripts/run_gate.sh"), "nodes", "--timeout", "5"],
                            env=env, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    call = json.loads((tmp_path / "gate-call.json").read_text())
    assert call["argv"] == ["-m", "kubehop", "gate", "nodes", "--timeout", "5"]
    assert call["content"].strip() == secret and call["mode"] == "0o600"
    assert call["kubeconfig_data_env"] is None, "the secret must not stay in the gate's environment"
    assert not Path(call["kubeconfig"]).exists(), "the kubeconfig file must be removed"
    assert "s3cr3t" not in " ".join(call["argv"]) + result.stdout + result.stderr


def test_run_gate_passes_the_gate_failure_on(project, tmp_path):
    env = {**os.environ, "GATE_EXIT": "1", "KUBEHOP_KUBECONFIG_DATA": "x"}
    result = subprocess.run(["bash", str(project / "components/scripts/run_gate.sh"), "pods"], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 1
    call = json.loads((tmp_path / "gate-call.json").read_text())
    assert not Path(call["kubeconfig"]).exists()


@pytest.fixture
def packer_rig(tmp_path: Path):
    """Stand-ins for aws and packer that log their calls; the AMI 'exists' once built."""
    bin_dir, log, state = tmp_path / "bin", tmp_path / "calls.log", tmp_path / "images"
    bin_dir.mkdir()
    state.mkdir()
    standin(bin_dir, "aws", f"""echo "aws $*" >> {log}
name=""; for a in "$@"; do case "$a" in Name=name,Values=*) name="${{a#Name=name,Values=}}";; esac; done
if [[ -f {state}/"$name" ]]; then printf '%s\t%s\n' "$(cat {state}/"$name")" "$(cat {state}/"$name".state 2>/dev/null || echo available)"; else echo None; fi
""")
    standin(bin_dir, "packer", f"""echo "packer $*" >> {log}
[[ "$1" == init ]] && exit 0
[[ -n "${{PACKER_FAIL:-}}" ]] && {{ echo "Build 'amazon-ebs.worker' errored" ; exit 1; }}
manifest=""; vars=""
for a in "$@"; do case "$a" in manifest_path=*) manifest="${{a#manifest_path=}}";; -var-file=*) vars="${{a#-var-file=}}";; esac; done
cp "$vars" {tmp_path}/vars-seen.json
echo "==> building"
printf '{{"builds":[{{"artifact_id":"us-west-2:ami-0123456789abcdef0"}}]}}' > "$manifest"
echo ami-0123456789abcdef0 > {state}/"$KUBEHOP_AMI_NAME"
""")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "AWS_REGION": "us-west-2",
           "KUBEHOP_PACKER_TEMPLATE": "packer/worker.pkr.hcl", "KUBEHOP_AMI_NAME": "kubehop-worker-1.29.15-abc",
           "KUBEHOP_PACKER_VARS": json.dumps({"kubernetes_version": "1.29.15", "region": "us-west-2"})}
    return env, log, tmp_path


def build(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "components/scripts/node_image/build.sh")], env=env,
                          capture_output=True, text=True, timeout=60)


def test_image_build_builds_once_then_reuses_the_ami(packer_rig):
    env, log, tmp = packer_rig
    first = build(env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "ami-0123456789abcdef0", "only the AMI id goes to stdout"
    assert "==> building" in first.stderr
    calls = log.read_text()
    assert "packer build" in calls and "-var-file=" in calls
    assert json.loads((tmp / "vars-seen.json").read_text())["kubernetes_version"] == "1.29.15"
    log.write_text("")
    second = build(env)
    assert second.returncode == 0 and second.stdout.strip() == "ami-0123456789abcdef0"
    assert "packer" not in log.read_text(), "a re-run must not build again"
    assert "already exists" in second.stderr


@pytest.mark.parametrize("state", ["pending", "failed"])
def test_image_build_never_reuses_an_ami_that_is_not_available(packer_rig, state):
    env, log, tmp = packer_rig
    (tmp / "images" / env["KUBEHOP_AMI_NAME"]).write_text("ami-0fedcba9876543210\n")
    (tmp / "images" / (env["KUBEHOP_AMI_NAME"] + ".state")).write_text(state + "\n")
    result = build(env)
    assert result.returncode == 1 and result.stdout == ""
    assert f"in state {state}, not available" in result.stderr and "packer" not in log.read_text()


def test_image_build_failure_is_clear(packer_rig):
    env, _, _ = packer_rig
    result = build({**env, "PACKER_FAIL": "1"})
    assert result.returncode == 1 and result.stdout == ""
    assert "image-build FAILED" in result.stderr and "kubehop-worker-1.29.15-abc" in result.stderr


def test_image_build_requires_its_inputs(packer_rig):
    env, _, _ = packer_rig
    env.pop("KUBEHOP_AMI_NAME")
    result = build(env)
    assert result.returncode == 2 and "KUBEHOP_AMI_NAME is required" in result.stderr
