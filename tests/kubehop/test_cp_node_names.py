"""Master node names as AWS clusters with the cloud controller name nodes."""
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
    for node, name in zip(data["config"]["kubehop:controlPlane"]["nodes"], names, strict=True):
        node["name"] = name
    code, out, err = run_plan(tmp_path, data, capsys)
    assert code == 0, err
    for name in names:
        assert f"{name}-kubeadm-install" in out
    assert f"{names[0]}-etcd-snapshot" in out
