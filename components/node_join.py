"""How new workers join: a fresh kubeadm bootstrap token, the API endpoint and
the CA hash published in SSM Parameter Store by the first master, where the
launch template's boot script reads them. Refreshed whenever the pools are
about to launch nodes from new AMIs, after the control plane is done."""
from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.steps import SshTarget, remote_step


@dataclass
class NodeJoinArgs:
    cluster: str
    region: str
    node: str
    """The first master: it holds the CA and makes the token."""
    target: SshTarget
    ttl_hours: int
    triggers: list[pulumi.Input[str]]
    """What the pools will launch (worker version, AMIs): a change means a fresh token."""
    after: list[pulumi.Resource] = field(default_factory=list)


class NodeJoin(pulumi.ComponentResource):
    def __init__(self, name: str, args: NodeJoinArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubehop:index:NodeJoin", name, None, opts)
        self.step = remote_step(
            f"{args.node}-join-token", target=args.target, script_path="control_plane/join_token.sh",
            env={"KUBEHOP_NODE": args.node, "KUBEHOP_CLUSTER": args.cluster, "KUBEHOP_REGION": args.region,
                 "KUBEHOP_TOKEN_TTL": f"{args.ttl_hours}h"},
            triggers=args.triggers, parent=self, depends_on=args.after)
        self.register_outputs({"parameters": f"/kubehop/{args.cluster}/"})
