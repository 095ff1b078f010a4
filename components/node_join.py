"""How new workers join: a fresh kubeadm bootstrap token, the API endpoint and
the CA hash published in SSM Parameter Store by the first master, where the
launch template's boot script reads them. Refreshed whenever the pools are
about to launch nodes from new AMIs, after the control plane is done, and
between runs by a systemd timer on the first master (join_token_timer.sh),
so a node launched days later still joins; a check after the rollouts proves
the published token still has the configured margin left."""
from __future__ import annotations

from dataclasses import dataclass, field

import hashlib

import pulumi

from components.steps import SshTarget, remote_step, script


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

    def env(self) -> dict[str, str]:
        return {"KUBEHOP_NODE": self.node, "KUBEHOP_CLUSTER": self.cluster, "KUBEHOP_REGION": self.region,
                "KUBEHOP_TOKEN_TTL": f"{self.ttl_hours}h"}


class NodeJoin(pulumi.ComponentResource):
    def __init__(self, name: str, args: NodeJoinArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubehop:index:NodeJoin", name, None, opts)
        self.args = args
        self.step = remote_step(
            f"{args.node}-join-token", target=args.target, script_path="control_plane/join_token.sh",
            env=args.env(), triggers=args.triggers, parent=self, depends_on=args.after)
        # re-installed when what it installs changes (the script it runs, the TTL, the names)
        installed = hashlib.sha256(script("control_plane/join_token_timer.sh").encode()).hexdigest()[:16]
        self.timer = remote_step(
            f"{args.node}-join-token-timer", target=args.target, script_path="control_plane/join_token_timer.sh",
            env=args.env(), triggers=[installed, *sorted(args.env().values())], parent=self, depends_on=[self.step])
        self.register_outputs({"parameters": f"/kubehop/{args.cluster}/"})

    def margin_check(self, margin_minutes: int, triggers: list[str], parent: pulumi.Resource,
                     after: list[pulumi.Resource]) -> pulumi.Resource:
        """A check, after the rollouts, that the published token has at least the margin left."""
        return remote_step(
            f"{self.args.node}-join-token-margin", target=self.args.target, script_path="control_plane/join_token.sh",
            env={**self.args.env(), "KUBEHOP_TOKEN_MARGIN": f"{margin_minutes}m"},
            triggers=[*triggers, str(margin_minutes)], parent=parent, depends_on=[self.timer, *after])
