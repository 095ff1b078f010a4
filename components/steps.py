"""Shared plumbing for step resources: scripts kept as real files, SSH
connections from config, and commands that run `python -m kubehop gate`.

Every step's delete does nothing: `pulumi destroy` never undoes an upgrade.

Every Command is built with `command_hygiene()`: no previous stdout/stderr in
its environment (pulumi-command puts PULUMI_COMMAND_STDOUT/STDERR there by
default; an image build's stderr is the whole Packer log, past Linux's 128 KiB
per-variable limit, so the next update fails with "argument list too long",
pulumi/pulumi-command#285, #552) and no `dir`: the provider runs local
commands in its own working directory, which the engine sets to the project
directory (pulumi-command `provider/pkg/provider/local/commandOutputs.go`
leaves `cmd.Dir` unset when `dir` is empty), so an absolute checkout path never
lands in the state and a run from another checkout re-runs nothing.
"""
from __future__ import annotations

import base64
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pulumi
import pulumi_command as command

SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"
# The helpers the control-plane step scripts share, sent ahead of each of them.
CONTROL_PLANE_LIB = SCRIPTS_DIR / "control_plane" / "lib.sh"
# Steps that install another step's script on the node: function name -> the script whose
# sent text (lib.sh included) that function prints, embedded ahead of the step.
EMBEDDED = {"control_plane/join_token_timer.sh": {"kubehop_join_token_script": "control_plane/join_token.sh"}}


def script(relpath: str) -> str:
    """The text of a script kept beside the components, as it is sent.

    A control-plane step (`control_plane/*.sh`) is sent with lib.sh ahead of
    it, so the one text on `bash -s`'s stdin holds every helper it calls; the
    step then does not source lib.sh itself. Any other script is sent as it is.
    """
    path = (SCRIPTS_DIR / relpath).resolve()
    text = "".join(embedded(function, inner) for function, inner in EMBEDDED.get(relpath, {}).items()) + path.read_text()
    if path.parent == CONTROL_PLANE_LIB.parent and path != CONTROL_PLANE_LIB:
        return CONTROL_PLANE_LIB.read_text() + "\n" + text
    return text


def embedded(function: str, relpath: str) -> str:
    """A shell function printing another script's sent text: base64 in a quoted here-document
    (its alphabet holds no delimiter and nothing the shell expands)."""
    data = "\n".join(textwrap.wrap(base64.b64encode(script(relpath).encode()).decode(), 76))
    return f"{function}() {{\n  base64 -d <<'KUBEHOP_EMBEDDED'\n{data}\nKUBEHOP_EMBEDDED\n}}\n"


@dataclass(frozen=True)
class SshTarget:
    """How to reach one machine over SSH; the private key is a secret Output."""

    host: str
    user: str
    port: int
    private_key: pulumi.Input[str]
    bastion_host: str | None = None
    bastion_user: str | None = None
    bastion_port: int | None = None
    host_key: str | None = None
    bastion_host_key: str | None = None

    @classmethod
    def for_masters(cls, cfg, private_key: pulumi.Input[str]) -> dict[str, "SshTarget"]:
        """One target per master of a StackConfig, in upgrade order."""
        ssh, bastion = cfg.ssh, cfg.ssh.bastion
        return {n.name: cls(n.host, ssh.user, n.port or ssh.port, private_key,
                            bastion.host if bastion else None, bastion.user if bastion else None,
                            bastion.port if bastion else None, n.host_key,
                            bastion.host_key if bastion else None) for n in cfg.control_plane.nodes}

    def connection(self) -> command.remote.ConnectionArgs:
        proxy = None
        if self.bastion_host:
            proxy = command.remote.ProxyConnectionArgs(
                host=self.bastion_host, user=self.bastion_user, port=self.bastion_port,
                private_key=self.private_key, host_key=self.bastion_host_key)
        return command.remote.ConnectionArgs(
            host=self.host, user=self.user, port=self.port, private_key=self.private_key,
            host_key=self.host_key, proxy=proxy, dial_error_limit=20)


def command_hygiene() -> dict:
    """Arguments every Command of the program gets (see the module docstring)."""
    return {"add_previous_output_in_env": False}


def env_prefix(env: Mapping[str, str]) -> str:
    """`env K=V ...` for values that are not secret (versions, paths, names)."""
    return "env " + " ".join(f"{k}={shlex.quote(str(v))}" for k, v in sorted(env.items()))


def remote_step(name: str, *, target: SshTarget, script_path: str, env: Mapping[str, str],
                triggers: Sequence[str], parent: pulumi.Resource,
                depends_on: Sequence[pulumi.Resource] = ()) -> command.remote.Command:
    """A script run as root on a node with its text on stdin.

    It re-runs only when `triggers` change (a new hop); its delete does nothing.
    """
    return command.remote.Command(
        name,
        connection=target.connection(),
        create=f"sudo {env_prefix(env)} bash -s",
        stdin=script(script_path),
        triggers=list(triggers),
        **command_hygiene(),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )


def gate_step(name: str, *, gate: str, args: Sequence[pulumi.Input[str]], triggers: Sequence[pulumi.Input[str]],
              parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = (),
              secret_env: Mapping[str, pulumi.Input[str]] | None = None,
              kubeconfig: pulumi.Input[str] | None = None) -> command.local.Command:
    """`python -m kubehop gate GATE ...` on the machine running `pulumi up`.

    Secrets reach the gate through the environment (kept secret by Pulumi),
    never through its arguments; a kubeconfig goes to a private temp file.
    """
    environment: dict[str, pulumi.Input[str]] = dict(secret_env or {})
    if kubeconfig is not None:
        environment["KUBEHOP_KUBECONFIG_DATA"] = kubeconfig
    create = pulumi.Output.all(*args).apply(
        lambda parts: " ".join(["bash components/scripts/run_gate.sh", *(shlex.quote(str(p)) for p in [gate, *parts])]))
    return command.local.Command(
        name,
        create=create,
        environment=environment or None,
        triggers=list(triggers),
        **command_hygiene(),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )
