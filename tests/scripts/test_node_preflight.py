"""node_preflight.sh on a fake master: containerd at the catalog's minimum, no
kubelet flag the target removed, the pause image compared (a warning). The
inputs come from the catalog and kubehop/kubelet_flags.py, as the program sends them."""
from __future__ import annotations

import pytest

from kubehop import catalog, kubelet_flags
from tests.scripts.test_control_plane_scripts import Rig

FLAGS_ENV = "var/lib/kubelet/kubeadm-flags.env"


def preflight_env(minor: str) -> dict[str, str]:
    release = catalog.release(minor)
    return {"KUBEHOP_VERSION": release.patch, "KUBEHOP_MINOR": minor, **kubelet_flags.preflight_env(release)}


def run(rig: Rig, minor: str, **extra: str):
    return rig.run("node_preflight.sh", **{**preflight_env(minor), **extra})


def set_containerd(rig: Rig, version: str, sandbox: str | None = "registry.k8s.io/pause:3.8") -> None:
    config = 'version = 2\n[plugins]\n  [plugins."io.containerd.grpc.v1.cri"]\n'
    if sandbox:
        config += f'    sandbox_image = "{sandbox}"\n'
    rig.update(containerd={"version": version, "config": config})


def flags_file(rig: Rig, text: str, path: str = FLAGS_ENV) -> None:
    target = rig.root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def failures(result) -> list[str]:
    return [line for line in result.err.splitlines() if ": FAILED: " in line]


def test_a_node_that_can_run_the_target_passes_and_changes_nothing(rig: Rig):
    set_containerd(rig, "1.7.24", "registry.k8s.io/pause:3.9")
    flags_file(rig, 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock"\n')
    result = run(rig, "1.29")
    assert result.rc == 0, result.err
    assert "ok: containerd 1.7.24 (at least 1.7.11" in result.out
    assert "ok: containerd's sandbox image is registry.k8s.io/pause:3.9" in result.out
    assert result.mutating == []
    assert [c for c in result.commands if c.startswith("containerd")] == ["containerd --version", "containerd config dump"]


@pytest.mark.parametrize(("minor", "version", "passes"), [
    ("1.29", "1.7.10", False),   # below 1.7.11 on its own line
    ("1.29", "1.7.11", True),
    ("1.29", "1.6.27", True),
    ("1.30", "1.6.27", False),   # 1.30 needs 1.6.28
    ("1.32", "1.7.23", False),
    ("1.32", "2.0.1", True),
    ("1.32", "2.1.0", True),     # a line newer than every listed minimum
    ("1.29", "1.5.18", False),   # a line the minor does not support
])
def test_containerd_minimum_per_minor(rig: Rig, minor: str, version: str, passes: bool):
    set_containerd(rig, version)
    result = run(rig, minor)
    assert (result.rc == 0) == passes, result.out + result.err
    if not passes:
        (line,) = failures(result)
        assert f"containerd {version}" in line and "upgrade containerd on master0 first" in line


def test_a_missing_containerd_fails_with_the_fix(rig: Rig):
    rig.update(containerd=None)
    result = run(rig, "1.29")
    assert result.rc == 1 and "containerd --version failed; install containerd" in result.err


@pytest.mark.parametrize(("path", "text"), [
    (FLAGS_ENV, 'KUBELET_KUBEADM_ARGS="--container-runtime=remote --container-runtime-endpoint=unix:///run/containerd/containerd.sock"'),
    ("etc/default/kubelet", "KUBELET_EXTRA_ARGS='--node-ip=10.0.0.10 --container-runtime remote'"),
])
def test_a_flag_the_target_kubelet_removed_stops_the_hop(rig: Rig, path: str, text: str):
    flags_file(rig, text + "\n", path)
    result = run(rig, "1.27")
    assert result.rc == 1
    (line,) = failures(result)
    assert f"/{path} passes --container-runtime, which kubelet 1.27 no longer has" in line
    # 1.26's kubelet still has it, and --container-runtime-endpoint alone is not it
    assert run(rig, "1.26").rc == 0
    flags_file(rig, 'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock"\n', path)
    assert run(rig, "1.27").rc == 0


def test_every_problem_is_reported_at_once(rig: Rig):
    set_containerd(rig, "1.6.30")
    flags_file(rig, 'KUBELET_KUBEADM_ARGS="--keep-terminated-pod-volumes=false --cloud-provider=aws"\n')
    result = run(rig, "1.31")
    assert result.rc == 1
    lines = failures(result)
    assert len(lines) == 3, result.err
    assert any("containerd 1.6.30 is older than 1.6.34" in line for line in lines)
    assert any("--keep-terminated-pod-volumes" in line for line in lines)
    assert any("--cloud-provider=aws" in line and "external" in line for line in lines)


def test_cloud_provider_external_passes_and_aws_fails_from_1_27(rig: Rig):
    flags_file(rig, 'KUBELET_KUBEADM_ARGS="--cloud-provider=external"\n')
    assert run(rig, "1.27").rc == 0
    flags_file(rig, 'KUBELET_KUBEADM_ARGS="--cloud-provider aws"\n')
    assert run(rig, "1.26").rc == 0  # the in-tree provider still exists in 1.26
    assert run(rig, "1.27").rc == 1


def test_a_commented_flag_is_not_passed(rig: Rig):
    flags_file(rig, '# KUBELET_KUBEADM_ARGS="--container-runtime=remote"\nKUBELET_KUBEADM_ARGS=""\n')
    assert run(rig, "1.27").rc == 0


def test_the_flag_files_are_read_never_run(rig: Rig):
    marker = rig.tmp / "ran"
    flags_file(rig, f'KUBELET_KUBEADM_ARGS="$(touch {marker})"\ntouch {marker}\n')
    run(rig, "1.29")
    assert not marker.exists()


def test_a_pause_image_mismatch_is_a_warning(rig: Rig):
    set_containerd(rig, "1.7.24", "registry.k8s.io/pause:3.8")
    result = run(rig, "1.31")
    assert result.rc == 0, result.err
    assert ("warning: containerd's sandbox image is registry.k8s.io/pause:3.8, kubeadm 1.31 expects "
            "registry.k8s.io/pause:3.10") in result.out


@pytest.mark.parametrize("value", ["registry.k8s.io/pause:3.9;touch x", "pause", "$(id)"])
def test_a_bad_pause_image_is_bad_input(rig: Rig, value: str):
    result = run(rig, "1.29", KUBEHOP_PAUSE_IMAGE=value)
    assert result.rc == 2 and "KUBEHOP_PAUSE_IMAGE must be registry/repository:tag" in result.err
    assert result.calls == []


def test_removed_flags_per_minor_come_from_one_table():
    assert kubelet_flags.removed_by("1.26") == ()
    assert kubelet_flags.removed_by("1.27") == ("container-runtime",)
    assert kubelet_flags.removed_by("1.31") == ("container-runtime", "keep-terminated-pod-volumes")
