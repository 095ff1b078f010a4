"""Node AMIs built with Packer (runbook 3.2, 4.1, 6.0.1).

The build is a local command that re-runs only when its inputs change: the
Kubernetes version or the content hash of the templates and scripts. A pinned
AMI id in config skips the build. The Spark image starts from the worker image.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command

from components.steps import command_hygiene
from kubehop import catalog
from kubehop.catalog import Version
from kubehop.config import NodeImages as NodeImagesConfig
from kubehop.imagehash import content_hash, declared_variables


def ami_name(role: str, version: Version, digest: str, base_ami: str | None = None) -> str:
    """Must match the templates' `ami_name`: unique per version and content, and for
    the spark image per worker AMI it is built on."""
    return f"kubehop-{role}-{version}-{digest}" + (f"-{base_ami}" if role == "spark" else "")


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
            self.built_version = pulumi.Output.from_input(str(args.version))  # pinned for this version by config
            self.register_outputs({"amiId": self.ami_id, "pinned": True})
            return
        plain = self._variables(args.role, args)
        worker_plain = self._variables("worker", args) if args.role == "spark" else None
        # versions are folded into the hash: a containerd bump must not reuse an old AMI by name
        digest = content_hash(args.role, variables=plain, worker_variables=worker_plain)
        name_ = pulumi.Output.from_input(args.base_ami).apply(lambda base: ami_name(args.role, args.version, digest, base)) \
            if args.role == "spark" else ami_name(args.role, args.version, digest)
        declared = declared_variables(args.role)
        extra = {"content_hash": digest, **({"worker_ami_id": args.base_ami} if args.role == "spark" else {})}
        variables = pulumi.Output.json_dumps({k: v for k, v in {**plain, **extra}.items() if k in declared})
        build = command.local.Command(
            f"{args.role}-image-build",
            create="bash components/scripts/node_image/build.sh",
            environment={
                "KUBEHOP_PACKER_TEMPLATE": f"packer/{args.role}.pkr.hcl",
                "KUBEHOP_PACKER_VARS": variables,
                "KUBEHOP_AMI_NAME": name_,
                "AWS_REGION": args.region,
            },
            triggers=[str(args.version), digest, *([args.base_ami] if args.role == "spark" else [])],
            **command_hygiene(),
            opts=pulumi.ResourceOptions(parent=self))
        # the version the AMI was built for, from the build's own state: an
        # untargeted build keeps its old triggers (see components/state.py)
        self.built_version = build.triggers.apply(lambda t: str(t[0]) if t else None)
        self.ami_id = build.stdout.apply(lambda out: out.strip().splitlines()[-1] if out.strip() else out)
        self.register_outputs({"amiId": self.ami_id, "amiName": name_})

    @staticmethod
    def _variables(role: str, args: NodeImageArgs) -> dict:
        """The Packer variables of one role, all plain values (no Outputs)."""
        cfg, version = args.config, args.version
        variables = {
            "region": args.region,
            "kubernetes_version": str(version),
            "kubernetes_minor": version.minor_str,
            "instance_type": cfg.instance_type,
            "subnet_id": cfg.subnet_id or "",
            "ami_name_prefix": f"kubehop-{role}",
            "tags": {"kubehop:cluster": args.cluster, "kubehop:kubernetes-version": str(version)},
        }
        if role == "worker":
            variables.update({
                "containerd_version": catalog.CONTAINERD_VERSION,
                "pause_image": catalog.release(version.minor_str).pause_image,
                "cni_plugins_version": catalog.CNI_PLUGINS_VERSION,
                "cni_plugins_sha256": cfg.cni_plugins_sha256,
                "source_ami_id": cfg.source_ami_id or "",
            })
        else:
            spark = cfg.spark
            variables.update({
                "jdk_package": spark.jdk_package,
                "hadoop_version": spark.hadoop_version,
                "hadoop_mirror": spark.hadoop_mirror,
                "hadoop_sha512": spark.hadoop_sha512,
            })
        return variables
