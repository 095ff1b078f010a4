"""Checks after every version stage (runbook 6.3.4, 6.4.4): nodes Ready at the
expected versions, no crash-looping or stuck-pending pods, application
endpoints, the network paths and the ingress URLs. Each is a gate step that
re-runs when the stage's versions change."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.node_join import NodeJoin
from components.steps import gate_step
from kubehop.config import Verify
from kubehop.hops import Hop


def checks(cfg: Verify, hop: Hop, kept: dict[str, str] | None = None) -> list[tuple[str, str, list[str]]]:
    """(check name, gate, gate arguments) for every configured check. `kept`: pool -> the
    kubelet a pool rolling after serving still runs (its nodes are held to that one)."""
    pools = [a for name, version in sorted((kept or {}).items()) for a in ("--pool-version", f"{name}=v{version}")]
    out = [
        ("nodes", "nodes", ["--control-plane-version", f"v{hop.control_plane}", "--worker-version", f"v{hop.workers}", *pools]),
        ("pods", "pods", ["--pending-grace", str(cfg.pending_grace_seconds), "--max-pending", str(cfg.max_pending)]),
    ]
    if cfg.endpoints:
        out.append(("endpoints", "endpoints", [a for svc in cfg.endpoints for a in ("--service", svc)]))
    if cfg.network_paths or cfg.node_paths:
        argv = [a for p in cfg.network_paths for a in ("--path", p.spec)]
        argv += [a for p in cfg.node_paths for a in ("--node-path", p.spec)]
        if cfg.node_paths:
            argv += ["--node-probe-pods", cfg.node_probe_pods]
        out.append(("network", "network", argv))
    if cfg.urls:
        out.append(("ingress-urls", "http-check", [a for u in cfg.urls for a in ("--url", f"{u.name}={u.url}={u.status}")]))
    return out


@dataclass
class VerificationArgs:
    config: Verify
    hop: Hop
    kubeconfig: pulumi.Input[str]
    after: list[pulumi.Resource]
    """Every other step of the stage: verification comes last."""
    join: NodeJoin | None = None
    """Where workers' join token is published (when the cluster has pools): checked for its margin."""
    join_margin_minutes: int = 60
    kept: dict[str, str] | None = None
    """Pools rolling after serving that still run another kubelet: pool -> version."""


class Verification(pulumi.ComponentResource):
    def __init__(self, name: str, args: VerificationArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubehop:index:Verification", name, None, opts)
        triggers = [str(args.hop.control_plane), str(args.hop.workers)]
        self.steps = [
            gate_step(f"{check}-verify", gate=gate, args=[*gate_args, "--timeout", "600", "--interval", "15"],
                      triggers=triggers, kubeconfig=args.kubeconfig, parent=self, depends_on=args.after)
            for check, gate, gate_args in checks(args.config, args.hop, args.kept)
        ]
        # the nodes check proves the versions: its record is the recorded hop (kubehop/record.py)
        self.nodes = self.steps[0]
        margin = [args.join.margin_check(args.join_margin_minutes, triggers, parent=self, after=args.after)] if args.join else []
        self.done: list[pulumi.Resource] = [*self.steps, *margin]
        """Every check of the stage: what brings users back waits for them all."""
        self.register_outputs({"checks": [c for c, _, _ in checks(args.config, args.hop, args.kept)]})
