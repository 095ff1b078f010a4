"""Node AMIs built with Packer (runbook 3.2, 4.1, 6.0.1).

The build is a local command that re-runs only when its inputs change: the
Kubernetes version or the content hash of the templates and scripts. A pinned
AMI id in config skips the build. The Spark image starts from the worker image.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.steps import PROJECT_DIR
from kubehop import catalog
from kubehop.catalog import Version
from kubehop.config import NodeImages as NodeImagesConfig
from kubehop.imagehash import content_hash


def ami_name(role: str, version: Version, digest: str) -> str:
    """Must match the templates' `ami_name`: unique per version and content."""
    return f"kubehop-{role}-{version}-{digest}"


@dataclass
class NodeImageArgs:
    role: str
    version: Version
    config: NodeImagesConfig
    region: str
    cluster: str
    base_ami: pulumi.Input[str] | None = None
    """For the spark image: the worker AMI it is built on."""


class NodeImage(pulumi.ComponentResource):
    """One AMI for one role at one Kubernetes version; `ami_id` is its id."""

    def __init__(self, name: str, args: NodeImageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubehop:index:NodeImage", name, None, opts)
        pinned = args.config.pinned.get(args.role)
        if pinned:
            self.ami_id: pulumi.Output[str] = pulumi.Output.from_input(pinned)
            self.register_outputs({"amiId": self.ami_id, "pinned": True})
            return
        digest = content_hash(args.role)
        name_ = ami_name(args.role, args.version, digest)
        variables = pulumi.Output.json_dumps(self._variables(args, digest))
        build = command.local.Command(
            f"{args.role}-image-build",
            create="bash components/scripts/node_image/build.sh",
            dir=str(PROJECT_DIR),
            environment={
                "KUBEHOP_PACKER_TEMPLATE": f"packer/{args.role}.pkr.hcl",
                "KUBEHOP_PACKER_VARS": variables,
                "KUBEHOP_AMI_NAME": name_,
                "AWS_REGION": args.region,
            },
            triggers=[str(args.version), digest],
            opts=pulumi.ResourceOptions(parent=self))
        self.ami_id = build.stdout.apply(lambda out: out.strip().splitlines()[-1] if out.strip() else out)
        self.register_outputs({"amiId": self.ami_id, "amiName": name_})

    @staticmethod
    def _variables(args: NodeImageArgs, digest: str) -> dict:
        cfg, version = args.config, args.version
        variables = {
            "region": args.region,
            "kubernetes_version": str(version),
            "kubernetes_minor": version.minor_str,
            "content_hash": digest,
            "instance_type": cfg.instance_type,
            "ami_name_prefix": f"kubehop-{args.role}",
            "tags": {"kubehop:cluster": args.cluster, "kubehop:kubernetes-version": str(version)},
        }
        if args.role == "worker":
            variables.update({
                "containerd_version": catalog.CONTAINERD_VERSION,
                "cni_plugins_version": catalog.CNI_PLUGINS_VERSION,
                "cni_plugins_sha256": cfg.cni_plugins_sha256,
                "source_ami_id": cfg.source_ami_id or "",
                "subnet_id": cfg.subnet_id or "",
            })
        else:
            spark = cfg.spark
            variables.update({
                "worker_ami_id": args.base_ami,
                "jdk_package": spark.jdk_package,
                "hadoop_version": spark.hadoop_version,
                "hadoop_mirror": spark.hadoop_mirror,
                "hadoop_sha512": spark.hadoop_sha512,
                "subnet_id": cfg.subnet_id or "",
            })
        return variables
