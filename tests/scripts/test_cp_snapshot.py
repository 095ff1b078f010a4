"""etcd_snapshot.sh against real etcd servers (plain http and mutual TLS) on free 127.0.0.1 ports.

The rig (tests/scripts/test_control_plane_scripts.py) puts recording stand-ins first on
PATH; its etcdctl is the real one, wrapped to record the call. "No etcdctl on
the host" removes that wrapper and puts a crictl stand-in (tests/standins/
crictl_standin.py, modelled on cri-tools) in front of the etcd "static pod",
whose etcdctl is again the real one.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubehop import record
from tests.scripts.test_control_plane_scripts import NEW, Rig, skipped

TESTS = Path(__file__).resolve().parents[1]
CRICTL = TESTS / "standins" / "crictl_standin.py"
NAME_RE = re.compile(rf"^etcd-before-{re.escape(NEW)}-\d{{8}}T\d{{6}}\.\d{{3}}Z\.db$")
CID = "3f1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Etcd:
    endpoint: str
    keys: int
    pki: Path | None = None


def real_etcd_binaries() -> tuple[str, str]:
    etcd, etcdctl = shutil.which("etcd"), shutil.which("etcdctl")
    assert etcd and etcdctl, "etcd and etcdctl are required for these tests (Debian: etcd-server, etcd-client)"
    return etcd, etcdctl


def start_etcd(workdir: Path, tls: Path | None = None, keys: int = 5):
    etcd, etcdctl = real_etcd_binaries()
    client, peer = free_port(), free_port()
    scheme = "https" if tls else "http"
    endpoint = f"{scheme}://127.0.0.1:{client}"
    args = [etcd, "--name", "cp-test", "--data-dir", str(workdir / "data"),
            "--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"cp-test=http://127.0.0.1:{peer}", "--log-level", "error"]
    client_flags: list[str] = []
    if tls:
        args += ["--client-cert-auth", "--trusted-ca-file", str(tls / "ca.crt"),
                 "--cert-file", str(tls / "server.crt"), "--key-file", str(tls / "server.key")]
        client_flags = [f"--cacert={tls / 'ca.crt'}", f"--cert={tls / 'server.crt'}", f"--key={tls / 'server.key'}"]
    log = open(workdir / "etcd.log", "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    env = {**os.environ, "ETCDCTL_API": "3"}
    ctl = [etcdctl, f"--endpoints={endpoint}", *client_flags]
    deadline = time.monotonic() + 15
    while True:
        ok = subprocess.run([*ctl, "--command-timeout=1s", "endpoint", "health"], capture_output=True, env=env)
        if ok.returncode == 0:
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"etcd did not start: {(workdir / 'etcd.log').read_text()[-2000:]}")
        time.sleep(0.1)
    for i in range(keys):
        subprocess.run([*ctl, "put", f"/registry/test/k{i}", f"value-{i}"], check=True, capture_output=True, env=env)
    return proc, log, Etcd(endpoint, keys, tls)


def stop_etcd(proc, log) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


@pytest.fixture(scope="module")
def etcd_plain(tmp_path_factory):
    proc, log, etcd = start_etcd(tmp_path_factory.mktemp("etcd-plain"))
    yield etcd
    stop_etcd(proc, log)


def make_pki(pki: Path) -> None:
    """A CA and one cert used by etcd as server and by etcdctl as client (like kubeadm's server.crt)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)
    pem = serialization.Encoding.PEM

    def key_pem(key) -> bytes:
        return key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "master0")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pki.mkdir(parents=True, exist_ok=True)
    (pki / "ca.crt").write_bytes(ca.public_bytes(pem))
    (pki / "server.crt").write_bytes(cert.public_bytes(pem))
    (pki / "server.key").write_bytes(key_pem(key))
    (pki / "server.key").chmod(0o600)


@pytest.fixture(scope="module")
def etcd_tls(tmp_path_factory):
    work = tmp_path_factory.mktemp("etcd-tls")
    make_pki(work / "pki")
    proc, log, etcd = start_etcd(work, tls=work / "pki")
    yield etcd
    stop_etcd(proc, log)


def snapshot_env(etcd: Etcd, **extra: str) -> dict[str, str]:
    env = {"ETCDCTL_ENDPOINTS": etcd.endpoint, "KUBEHOP_ETCD_HEALTH_TIMEOUT": "3",
           "KUBEHOP_SNAPSHOT_TIMEOUT": "20"}
    if etcd.pki is None:
        env["KUBEHOP_ETCD_INSECURE"] = "1"
    env.update(extra)
    return env


def snapshot_status(path: Path) -> dict:
    """What the real etcdctl says of a snapshot file: hash, revision, totalKey, totalSize."""
    _, etcdctl = real_etcd_binaries()
    out = subprocess.run([etcdctl, "snapshot", "status", "-w", "json", str(path)], capture_output=True, text=True,
                         env={**os.environ, "ETCDCTL_API": "3"}, check=True).stdout
    return json.loads(out)


def snapshot_keys(path: Path) -> int:
    return snapshot_status(path)["totalKey"]


def put(etcd: Etcd, key: str, value: str) -> None:
    """A write to the real etcd (what the cluster does between a failed hop and its retry)."""
    _, etcdctl = real_etcd_binaries()
    flags = [] if etcd.pki is None else [f"--cacert={etcd.pki / 'ca.crt'}", f"--cert={etcd.pki / 'server.crt'}",
                                         f"--key={etcd.pki / 'server.key'}"]
    subprocess.run([etcdctl, f"--endpoints={etcd.endpoint}", *flags, "put", key, value], check=True,
                   capture_output=True, env={**os.environ, "ETCDCTL_API": "3"})


def snapshots(snapdir: Path) -> list[Path]:
    return sorted(p for p in snapdir.iterdir() if p.name.startswith("etcd-"))


def recorded(result) -> dict:
    """The record the program exports from the step's stdout."""
    got = record.snapshot(result.out)
    assert got is not None, result.out
    return got


def without_host_etcdctl(rig: Rig, etcdutl: bool = True, containers: list | None = None) -> None:
    """A stock kubeadm master: no etcdctl on the host, crictl in front of the etcd static pod."""
    (rig.bin / "etcdctl").unlink()
    wrapper = rig.bin / "crictl"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S -E "{CRICTL}" "{rig.dir}" "$@"\n')
    wrapper.chmod(0o755)
    if containers is None:
        containers = [{"id": CID, "name": "etcd", "state": "running"},
                      {"id": "9" * 64, "name": "etcd", "state": "exited"},  # the previous incarnation
                      {"id": "a" * 64, "name": "kube-apiserver", "state": "running"}]
    (rig.dir / "crictl.json").write_text(json.dumps({"root": str(rig.root), "containers": containers, "etcdutl": etcdutl}))


def kubeadm_pki(rig: Rig, etcd: Etcd) -> Path:
    pki = rig.root / "etc/kubernetes/pki/etcd"  # kubeadm's layout, under KUBEHOP_ROOT
    pki.mkdir(parents=True)
    for name in ("ca.crt", "server.crt", "server.key"):
        shutil.copy2(etcd.pki / name, pki / name)
    return pki


# --------------------------------------------------------------------------- tests
def test_every_run_takes_a_fresh_verified_snapshot(rig: Rig, etcd_plain: Etcd):
    snapdir = rig.root / "var/backups/kubehop/etcd"  # the default, under KUBEHOP_ROOT
    first = rig.run("etcd_snapshot.sh", **snapshot_env(etcd_plain))
    assert first.rc == 0, first.err
    [final] = snapshots(snapdir)
    assert NAME_RE.match(final.name), final.name
    part = snapdir / f".{final.name[:-3]}.part"
    assert first.commands == [
        "etcdctl version",  # no etcdutl on this host: is its etcdctl older than 3.6?
        f"etcdctl --endpoints={etcd_plain.endpoint} --dial-timeout=5s --command-timeout=3s endpoint health",
        f"etcdctl --endpoints={etcd_plain.endpoint} snapshot save {part}",
        f"etcdctl snapshot status -w json {part}"]
    status = snapshot_status(final)
    assert status["totalKey"] >= etcd_plain.keys
    assert final.stat().st_mode & 0o777 == 0o600
    assert recorded(first) == {"path": str(final), "revision": str(status["revision"]), "keys": str(status["totalKey"]),
                               "s3": ""}
    assert f"saved {final} ({status['totalKey']} keys, revision {status['revision']})" in first.out

    # The hop failed later and is retried after the cluster kept writing: the retry's
    # snapshot is new, and newer than the first.
    put(etcd_plain, "/registry/test/after-first-try", "x")
    put(etcd_plain, "/registry/test/after-first-try-2", "y")
    second = rig.run("etcd_snapshot.sh", **snapshot_env(etcd_plain))
    assert second.rc == 0 and not skipped(second, "etcd-snapshot"), second.out + second.err
    newest = Path(recorded(second)["path"])
    assert newest != final and NAME_RE.match(newest.name) and snapshots(snapdir) == sorted([final, newest])
    assert int(recorded(second)["revision"]) == snapshot_status(newest)["revision"] > status["revision"]
    assert any("snapshot save" in c for c in second.mutating)


def test_an_aged_snapshot_file_does_not_satisfy_the_step(rig: Rig, etcd_plain: Etcd, tmp_path: Path):
    snapdir = tmp_path / "snaps"
    first = rig.run("etcd_snapshot.sh", **snapshot_env(etcd_plain, KUBEHOP_SNAPSHOT_DIR=str(snapdir)))
    assert first.rc == 0, first.err
    aged = Path(recorded(first)["path"])
    week_ago = time.time() - 7 * 86400
    os.utime(aged, (week_ago, week_ago))
    put(etcd_plain, "/registry/test/this-week", "z")
    retry = rig.run("etcd_snapshot.sh", **snapshot_env(etcd_plain, KUBEHOP_SNAPSHOT_DIR=str(snapdir)))
    assert retry.rc == 0, retry.err
    fresh = Path(recorded(retry)["path"])
    assert fresh != aged and fresh.stat().st_mtime > week_ago + 86400
    assert snapshot_status(fresh)["revision"] > snapshot_status(aged)["revision"]
    assert f"etcdctl --endpoints={etcd_plain.endpoint} snapshot save {snapdir}/.{fresh.name[:-3]}.part" in retry.commands


def test_a_snapshot_with_zero_keys_is_rejected(rig: Rig, tmp_path: Path):
    (tmp_path / "empty-etcd").mkdir()
    proc, log, empty = start_etcd(tmp_path / "empty-etcd", keys=0)
    try:
        snapdir = tmp_path / "snaps"
        result = rig.run("etcd_snapshot.sh", **snapshot_env(empty, KUBEHOP_SNAPSHOT_DIR=str(snapdir)))
    finally:
        stop_etcd(proc, log)
    assert result.rc == 1, result.out
    # etcd 3.4's status of a never-written store: totalKey counts its meta/members entries, revision 0
    assert re.search(r"does not verify \(snapshot status reports totalKey=\d+ revision=0", result.err), result.err
    assert "it was discarded" in result.err
    assert list(snapdir.iterdir()) == [] and record.snapshot(result.out) is None


def test_prunes_to_keep_newest(rig: Rig, etcd_plain: Etcd, tmp_path: Path):
    snapdir = tmp_path / "snaps"
    snapdir.mkdir()
    now = time.time()
    old = [f"etcd-before-{v}-20260{m}01T000000.000Z.db" for v, m in (("1.26.15", 9), ("1.25.16", 6), ("1.24.17", 3))]
    for age, name in enumerate(old, start=1):
        (snapdir / name).write_bytes(b"old")
        os.utime(snapdir / name, (now - age * 86400, now - age * 86400))
    (snapdir / "notes.txt").write_text("not a snapshot")
    result = rig.run("etcd_snapshot.sh", **snapshot_env(etcd_plain, KUBEHOP_SNAPSHOT_DIR=str(snapdir),
                                                        KUBEHOP_SNAPSHOT_KEEP="2"))
    assert result.rc == 0, result.err
    newest = Path(recorded(result)["path"]).name
    assert sorted(p.name for p in snapdir.iterdir()) == sorted([newest, old[0], "notes.txt"])
    assert result.out.count("pruned old snapshot") == 2


def test_uploads_to_s3_with_a_kms_key(rig: Rig, etcd_plain: Etcd, tmp_path: Path):
    snapdir = tmp_path / "snaps"
    key = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    result = rig.run("etcd_snapshot.sh", **snapshot_env(etcd_plain, KUBEHOP_SNAPSHOT_DIR=str(snapdir),
                                                        KUBEHOP_SNAPSHOT_S3_URI="s3://backups/kubehop/",
                                                        KUBEHOP_SNAPSHOT_KMS_KEY_ID=key))
    assert result.rc == 0, result.err
    final = Path(recorded(result)["path"])
    dest = f"s3://backups/kubehop/{final.name}"
    assert [c for c in result.commands if c.startswith("aws")] == [
        f"aws s3 cp --only-show-errors --sse aws:kms --sse-kms-key-id {key} {final} {dest}"]
    assert rig.state()["s3"] == {dest: final.stat().st_size}
    assert recorded(result)["s3"] == dest


def test_upload_without_kms_and_its_failure_keeps_the_local_file(rig: Rig, etcd_plain: Etcd, tmp_path: Path):
    snapdir = tmp_path / "snaps"
    rig.fail("aws", "s3 cp", rc=1, stderr="upload failed: An error occurred (AccessDenied) when calling the PutObject operation")
    result = rig.run("etcd_snapshot.sh", **snapshot_env(etcd_plain, KUBEHOP_SNAPSHOT_DIR=str(snapdir),
                                                        KUBEHOP_SNAPSHOT_S3_URI="s3://backups/kubehop"))
    assert result.rc == 1 and "AccessDenied" in result.err and "the local snapshot is kept" in result.err
    [final] = snapshots(snapdir)
    assert f"aws s3 cp --only-show-errors {final} s3://backups/kubehop/{final.name}" in result.commands


def test_dead_endpoint_fails_and_writes_nothing(rig: Rig, tmp_path: Path):
    snapdir = tmp_path / "snaps"
    dead = Etcd(f"http://127.0.0.1:{free_port()}", 0)
    started = time.monotonic()
    result = rig.run("etcd_snapshot.sh", **snapshot_env(dead, KUBEHOP_SNAPSHOT_DIR=str(snapdir),
                                                        KUBEHOP_ETCD_HEALTH_TIMEOUT="1"))
    assert time.monotonic() - started < 15
    assert result.rc == 1
    assert f"FAILED: etcd at {dead.endpoint} is not reachable or not healthy" in result.err
    assert "no snapshot was written" in result.err
    assert list(snapdir.iterdir()) == []


def test_over_tls_with_kubeadm_default_paths(rig: Rig, etcd_tls: Etcd):
    pki = kubeadm_pki(rig, etcd_tls)
    result = rig.run("etcd_snapshot.sh", **snapshot_env(etcd_tls))
    assert result.rc == 0, result.err
    assert snapshot_keys(Path(recorded(result)["path"])) > 0
    save = next(c for c in result.calls if "save" in c["argv"])
    assert save["argv"][:4] == [f"--endpoints={etcd_tls.endpoint}", f"--cacert={pki}/ca.crt",
                                f"--cert={pki}/server.crt", f"--key={pki}/server.key"]
    key_body = (pki / "server.key").read_text().splitlines()[1]
    assert all(key_body not in " ".join(c["argv"]) for c in result.calls)


def test_missing_certificates_fail_clearly(rig: Rig, etcd_tls: Etcd):
    result = rig.run("etcd_snapshot.sh", **snapshot_env(etcd_tls))
    assert result.rc == 1
    assert f"FAILED: cannot read {rig.root}/etc/kubernetes/pki/etcd/ca.crt" in result.err
    assert result.calls == []


@pytest.mark.parametrize("etcdutl", [True, False], ids=["etcd-3.5-image", "etcd-3.4-image"])
def test_no_etcdctl_on_the_host_uses_the_etcd_static_pod(rig: Rig, etcd_tls: Etcd, etcdutl: bool):
    kubeadm_pki(rig, etcd_tls)
    (rig.root / "var/lib/etcd").mkdir(parents=True)  # the pod's data dir, a hostPath
    without_host_etcdctl(rig, etcdutl=etcdutl)
    result = rig.run("etcd_snapshot.sh", **snapshot_env(etcd_tls))
    assert result.rc == 0, result.err
    final = Path(recorded(result)["path"])
    seen = f"/var/lib/etcd/.{final.name[:-3]}.part"  # the file as etcdctl in the pod sees it
    tls = ("--cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt "
           "--key=/etc/kubernetes/pki/etcd/server.key")
    verifier = "etcdutl" if etcdutl else "etcdctl"
    assert result.commands == [
        "crictl ps --name ^etcd$ --state running -q",
        f"crictl exec {CID} etcdutl version",
        f"crictl exec {CID} etcdctl --endpoints={etcd_tls.endpoint} {tls} --dial-timeout=5s --command-timeout=3s endpoint health",
        f"crictl exec {CID} etcdctl --endpoints={etcd_tls.endpoint} {tls} snapshot save {seen}",
        f"crictl exec {CID} {verifier} snapshot status -w json {seen}"]
    assert "etcdctl is not on this node; using the etcd static pod's own client" in result.out
    assert snapshot_keys(final) >= etcd_tls.keys and final.stat().st_mode & 0o777 == 0o600
    assert list((rig.root / "var/lib/etcd").iterdir()) == []  # nothing left in etcd's data dir


@pytest.mark.parametrize(("containers", "message"), [
    ([], "crictl shows 0 running etcd containers, not 1"),
    ([{"id": CID, "name": "etcd", "state": "exited"}], "crictl shows 0 running etcd containers, not 1"),
])
def test_no_etcdctl_and_no_running_etcd_pod_fails_clearly(rig: Rig, etcd_plain: Etcd, containers: list, message: str):
    without_host_etcdctl(rig, containers=containers)
    result = rig.run("etcd_snapshot.sh", **snapshot_env(etcd_plain))
    assert result.rc == 1 and message in result.err and "no snapshot was written" in result.err


def test_neither_etcdctl_nor_crictl_names_the_fix(rig: Rig, etcd_plain: Etcd):
    (rig.bin / "etcdctl").unlink()
    result = rig.run("etcd_snapshot.sh", **snapshot_env(etcd_plain))
    assert result.rc == 1 and result.calls == []
    assert "neither etcdctl nor crictl is on this node" in result.err and "fix: install cri-tools" in result.err


def test_host_etcdctl_3_6_without_etcdutl_fails_clearly(rig: Rig, etcd_plain: Etcd):
    # etcdctl 3.6 has no `snapshot status` (etcd-io/etcd CHANGELOG-3.6, PR #13809); its `version` output:
    (rig.bin / "etcdctl").write_text("#!/bin/sh\nprintf 'etcdctl version: 3.6.4\\nAPI version: 3.6\\n'\n")
    result = rig.run("etcd_snapshot.sh", **snapshot_env(etcd_plain))
    assert result.rc == 1, result.out
    assert "etcd 3.6 moved it to etcdutl" in result.err and "no snapshot was written" in result.err




def test_the_program_sends_the_kms_key_and_exports_the_snapshot():
    import copy

    from kubehop.plan import engine
    from kubehop.plan.stages import read_stack_file
    from tests.plan_helpers import prod_b

    data = copy.deepcopy(prod_b())
    data["config"]["kubehop:controlPlane"]["etcd"]["s3KmsKeyId"] = "alias/etcd-backups"
    sf = read_stack_file(data)
    run = engine.run_program(sf.raw, sf.secret_keys, stack="prod-b", stack_outputs={}, template_versions={})
    [step] = [r for r in run.resources.values() if r.name == "master0-etcd-snapshot"]
    create = step.inputs["create"]
    assert "KUBEHOP_SNAPSHOT_KMS_KEY_ID=alias/etcd-backups" in create and "KUBEHOP_HOP" not in create
    assert "KUBEHOP_SNAPSHOT_S3_URI=s3://dv-prod-b-etcd-backups/kubehop" in create
    # the mock engine's remote commands print nothing, so nothing was recorded
    assert "etcdSnapshot" in run.outputs and run.outputs["etcdSnapshot"] is None
