"""Config for the control plane that reaches the etcd-snapshot step and node names as AWS names nodes."""
from __future__ import annotations

import copy

from kubehop.plan import cli
from tests.plan_helpers import prod_b, write_stack


def run_plan(tmp_path, data, capsys, *extra):
    path = write_stack(tmp_path, data)
    code = cli.main(["--stack", "prod-b", "--config", str(path), "--format", "json", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_dotted_node_names_as_the_aws_cloud_controller_names_nodes_plan(tmp_path, capsys):
    """Node names are DNS-1123 subdomains (apimachinery ValidateNodeName); AWS names them ip-....compute.internal."""
    data = copy.deepcopy(prod_b())
    names = [f"ip-10-42-1-{10 + i}.us-west-2.compute.internal" for i in range(3)]
    for node, name in zip(data["config"]["kubehop:controlPlane"]["nodes"], names):
        node["name"] = name
    code, out, err = run_plan(tmp_path, data, capsys)
    assert code == 0, err
    for name in names:
        assert f"{name}-kubeadm-install" in out
    assert f"{names[0]}-etcd-snapshot" in out


def test_snapshot_kms_key_reaches_the_step_and_never_without_a_bucket(tmp_path, capsys):
    data = copy.deepcopy(prod_b())
    etcd = data["config"]["kubehop:controlPlane"].setdefault("etcd", {})
    etcd.update({"s3KmsKey": "alias/kubehop-backups"})  # prod-b has s3Uri
    code, out, err = run_plan(tmp_path, data, capsys)
    assert code == 0, err
    assert "KUBEHOP_SNAPSHOT_S3_KMS_KEY" in out and "alias/kubehop-backups" in out


def test_the_snapshot_line_is_read_from_the_steps_stdout():
    from kubehop import record
    out = "kubehop: etcd-snapshot on master0: saved /x (5 keys, revision 9)\nkubehop-snapshot path=/v/etcd-a-20261202T000000Z.db revision=9 keys=5\n"
    assert record.snapshot(out) == {"path": "/v/etcd-a-20261202T000000Z.db", "revision": 9, "keys": 5}
    assert record.snapshot("kubehop-snapshot path=/v/x.db revision=? keys=5\n") is None
    assert record.snapshot(None) is None and record.snapshot("") is None
