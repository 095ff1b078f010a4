"""Read-only checks before a hop moves anything: no client still uses an API
the target minor removes (on every kube-apiserver: `apiservers` is the number
of control-plane nodes), and no PodDisruptionBudget would block every drain
(the classic half-done upgrade). They re-run once per hop. On the first run
(adoption) the nodes must run the versions `adopt` declares, so a wrong adopt
value cannot turn the adoption into an unplanned upgrade."""
from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.steps import gate_step
from kubehop.hops import Hop


@dataclass
class PreflightArgs:
    hop: Hop
    kubeconfig: pulumi.Input[str]
    ignore_pdbs: list[str] = field(default_factory=list)
    adopting: bool = False
    """First run: check the cluster really runs the adopt versions before anything moves."""
    apiservers: int = 1
    """How many kube-apiservers the deprecated-API check must read (one per master)."""
    after: list[pulumi.Resource] = field(default_factory=list)


class Preflight(pulumi.ComponentResource):
    """`steps` must pass before the control plane's first step."""

    def __init__(self, name: str, args: PreflightArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubehop:index:Preflight", name, None, opts)
        triggers = [str(args.hop.control_plane)]
        pdb_args = [a for ref in args.ignore_pdbs for a in ("--ignore", ref)]
        self.steps = [
            gate_step("deprecated-apis-preflight", gate="deprecated-apis",
                      args=["--removed-in", args.hop.control_plane.minor_str, "--apiservers", str(args.apiservers)],
                      triggers=triggers,
                      kubeconfig=args.kubeconfig, parent=self, depends_on=args.after),
            gate_step("pdbs-preflight", gate="pdbs", args=pdb_args, triggers=triggers,
                      kubeconfig=args.kubeconfig, parent=self, depends_on=args.after),
        ]
        if args.adopting:
            deployed = args.hop.deployed
            self.steps.append(gate_step(
                "adopted-versions-preflight", gate="nodes",
                args=["--control-plane-version", f"v{deployed.control_plane}", "--worker-version", f"v{deployed.workers}",
                      "--allow-cordoned", "--timeout", "60"],
                triggers=[str(deployed.control_plane), str(deployed.workers)],
                kubeconfig=args.kubeconfig, parent=self, depends_on=args.after))
        self.register_outputs({"checks": ["deprecated-apis", "pdbs", *(["adopted-versions"] if args.adopting else [])]})
