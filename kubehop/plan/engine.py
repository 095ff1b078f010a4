"""Run the real Pulumi program offline and record what it registers.

A `MockMonitor` subclass records every RegisterResource request (type, name,
parent, dependencies, options, inputs with secrets masked). Mocks answer
with deterministic outputs so that a stage's diff against the previous
stage is exactly what `pulumi preview` would show.

Secrets keep an identity: offline, a `secure:` config key holds a marker with
its key and a digest of its ciphertext (`offline_secret`), and a masked input
shows as `[secret:<key>@<digest>]`, so a rotated secret (new ciphertext) shows
every step it re-runs and a reader sees which secret reaches which step.
"""
from __future__ import annotations

import hashlib
import json
import re
import runpy
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime.proto import source_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.settings import get_root_resource, set_root_resource
from pulumi.runtime.sync_await import _sync_await

PROJECT_DIR = Path(__file__).resolve().parents[2]
SECRET = "[secret]"
# The value a `secure:` config key holds offline (it cannot be decrypted here)
# starts with this, then `<key>@<digest>;` (see offline_secret).
OFFLINE_SECRET = "kubehop-offline-secret:"
_MARKER = re.compile(re.escape(OFFLINE_SECRET) + r"([A-Za-z0-9_.:-]+@[0-9a-f]{8});")


def offline_secret(key: str, ciphertext: str) -> str:
    """The offline stand-in for a secret: its key and a short digest of its
    ciphertext (never a plaintext), so a rotated secret differs."""
    digest = hashlib.sha256(ciphertext.encode()).hexdigest()[:8]
    return f"{OFFLINE_SECRET}{key.split(':', 1)[-1]}@{digest};"


def secret_label(value: Any) -> str:
    """`[secret:<key>@<digest>]` for each config secret inside a secret value."""
    found = sorted(set(_MARKER.findall(json.dumps(value, sort_keys=True, default=str))))
    return f"[secret:{','.join(found)}]" if found else SECRET
_SECRET_SIG = rpc._special_secret_sig
_SIG_KEY = rpc._special_sig_key


@dataclass
class Registered:
    """One RegisterResource request as the engine received it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    dependencies: list[str]
    inputs: dict[str, Any]
    import_id: str
    retain_on_delete: bool
    ignore_changes: list[str]
    aliases: list[dict] = field(default_factory=list)
    """The aliases as sent (alias specs: the SDK sends specs when the monitor supports them)."""
    revealed: dict[str, Any] | None = None
    """The inputs with secrets in the clear: only when a test asks (run_program(reveal=True)), to run the steps."""


@dataclass
class Run:
    """Everything one program run registered, in registration order, and its outputs."""

    resources: dict[str, Registered] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    output_dependencies: dict[str, set[str]] = field(default_factory=dict)
    """Per stack output, the URNs of the resources its value waits for."""


def _map_secrets(value: Any, secret, unknown: str | None) -> Any:
    """A serialized struct with each secret wrapper replaced by `secret(wrapped value)`
    (and, with `unknown`, the engine's unknown sentinel by that text)."""
    if isinstance(value, dict):
        if value.get(_SIG_KEY) == _SECRET_SIG:
            return secret(value.get("value"))
        return {k: _map_secrets(v, secret, unknown) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_secrets(v, secret, unknown) for v in value]
    if unknown is not None and isinstance(value, str) and value == rpc.UNKNOWN:
        return unknown
    return value


def mask_secrets(value: Any) -> Any:
    """Replace every secret-wrapped value of a serialized struct by its label ([secret:...])."""
    return _map_secrets(value, secret_label, "(known after apply)")


def reveal_secrets(value: Any) -> Any:
    """A serialized struct with every secret wrapper replaced by the value it wraps."""
    return _map_secrets(value, lambda wrapped: reveal_secrets(wrapped), None)


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that keeps each request's type, parent, deps and options."""

    def __init__(self, mocks: pulumi_mocks.Mocks, reveal: bool = False):
        super().__init__(mocks)
        self.run = Run()
        self.reveal = reveal

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        # keys sorted: the SDK serializes properties in the order they resolve, which varies
        inputs = json.loads(json.dumps(mask_secrets(json_format.MessageToDict(request.object)), sort_keys=True))
        self.run.resources[response.urn] = Registered(
            urn=response.urn, type=request.type, name=request.name, parent=request.parent,
            custom=request.custom, dependencies=sorted(set(request.dependencies)),
            inputs=inputs, import_id=request.importId, retain_on_delete=request.retainOnDelete,
            ignore_changes=list(request.ignoreChanges),
            aliases=[json_format.MessageToDict(alias) for alias in request.aliases],
            revealed=reveal_secrets(json_format.MessageToDict(request.object)) if self.reveal else None)
        return response


class PlanMocks(pulumi_mocks.Mocks):
    """Deterministic provider answers.

    An output derived from a resource's inputs changes exactly when they do, so
    an image rebuilt in one stage yields a new AMI id, a changed launch template
    a new version number, and unchanged resources stay unchanged.
    """

    def __init__(self, stack_outputs: dict[str, dict], template_versions: dict[str, tuple[str, int]],
                 untargeted: dict[str, tuple[str, dict]] | None = None, parameters: dict[str, str] | None = None):
        self.stack_outputs = stack_outputs
        self.template_versions = template_versions
        self.untargeted = untargeted or {}
        """name -> (id, outputs) of resources outside `--target`: the engine keeps their old state."""
        self.parameters = parameters or {}
        """SSM parameter name -> value: what `aws:ssm/getParametersByPath` finds (the cutover record)."""

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        if args.name in self.untargeted:
            return self.untargeted[args.name]
        inputs = dict(args.inputs)
        digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
        if args.typ == "pulumi:pulumi:StackReference":
            name = inputs.get("name", args.name)
            return name, {"name": name, "outputs": self.stack_outputs.get(name, {}), "secretOutputNames": []}
        if args.typ == "command:local:Command":
            out = f"ami-{digest[:17]}" if args.name.endswith("-image-build") else gate_stdout(inputs.get("create", ""))
            return f"{args.name}-id", {**inputs, "stdout": out, "stderr": ""}
        if args.typ == "command:remote:Command":
            return f"{args.name}-id", {**inputs, "stdout": "", "stderr": ""}
        if args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
            last_digest, version = self.template_versions.get(args.name, ("", 0))
            if digest != last_digest:
                version += 1
                self.template_versions[args.name] = (digest, version)
            return f"lt-{digest[:17]}", {**inputs, "latestVersion": version, "arn": f"arn:aws:ec2:::launch-template/{args.name}"}
        if args.typ == "aws:sqs/queue:Queue":
            return args.name, {**inputs, "url": f"https://sqs.invalid/{inputs.get('name', args.name)}", "arn": f"arn:aws:sqs:::{args.name}"}
        return f"{args.name}-id", {**inputs, "arn": f"arn:aws:mock:::{args.name}", "name": inputs.get("name", args.name)}

    def call(self, args: pulumi_mocks.MockCallArgs):
        if args.token == PARAMETERS_BY_PATH:
            # the data source's result: parallel names/values lists, empty when the path holds nothing
            prefix = str(args.args.get("path", "")).rstrip("/") + "/"
            names = sorted(n for n in self.parameters if n.startswith(prefix))
            return {"id": prefix.rstrip("/"), "path": args.args.get("path"), "recursive": bool(args.args.get("recursive")),
                    "names": names, "values": [self.parameters[n] for n in names], "types": ["String"] * len(names),
                    "arns": [f"arn:aws:ssm:::parameter{n}" for n in names], "withDecryption": False}
        return {}


PARAMETERS_BY_PATH = "aws:ssm/getParametersByPath:getParametersByPath"


def gate_argv(create: Any) -> tuple[str, list[str]] | None:
    """(gate, arguments) of a gate step's command line (components/steps.py gate_step), else None."""
    words = shlex.split(create) if isinstance(create, str) else []
    if words[:2] == ["bash", "components/scripts/run_gate.sh"] and len(words) > 2:
        return words[2], words[3:]
    return None


def gate_stdout(create: str) -> str:
    """What a gate step prints when its gate passes: the record line
    (kubehop/gates/cli.py prints it through kubehop.record.line)."""
    from kubehop import record

    parsed = gate_argv(create)
    return record.line(*parsed) + "\n" if parsed else ""


def run_program(config: dict[str, str], secret_keys: list[str], *, stack: str,
                stack_outputs: dict[str, dict], template_versions: dict[str, tuple[str, int]],
                organization: str = "organization", untargeted: dict[str, tuple[str, dict]] | None = None,
                parameters: dict[str, str] | None = None, reveal: bool = False) -> Run:
    """Run `__main__.py` once with this config; raise what the program raised.

    `untargeted` (resource name -> (id, outputs) from an earlier run) models
    `pulumi up --target`: those resources keep their old outputs. `parameters`
    is what SSM Parameter Store holds (the cutover record, kubehop/cutover_record.py)."""
    monitor = RecordingMonitor(PlanMocks(stack_outputs, template_versions, untargeted, parameters), reveal)
    pulumi_mocks.set_mocks(monitor.mocks, project="kubehop", stack=stack, preview=True,
                           monitor=monitor, organization=organization)
    set_all_config(dict(config), list(secret_keys))
    # set_mocks leaves a finished root stack; run the program in a fresh one through the
    # SDK's own entrypoint (pulumi/runtime/stack.py run_in_stack), which awaits the async
    # main the program registers with pulumi.run, as `pulumi up` does
    set_root_resource(None)

    stacks = []

    def program() -> None:
        stacks.append(get_root_resource())
        runpy.run_path(str(PROJECT_DIR / "__main__.py"), run_name="__main__")

    # The SDK walks the Python stack at every registration for the engine's source positions
    # (pulumi/runtime/resource.py register_resource calls _get_stack_trace); the mock monitor
    # reads none, so offline each registration sends an empty trace, as it may (the field is
    # optional in proto/pulumi/resource.proto RegisterResourceRequest.stackTrace).
    traced = pulumi_resource._get_stack_trace
    pulumi_resource._get_stack_trace = source_pb2.StackTrace
    try:
        _sync_await(run_in_stack(program))
    except Exception as exc:
        exc.kubehop_run = monitor.run  # what was registered before the failure (tests check: nothing)
        raise
    finally:
        pulumi_resource._get_stack_trace = traced
    root = stacks[0]
    for key, value in root.outputs.items():
        output = pulumi.Output.from_input(value)
        monitor.run.outputs[key] = _sync_await(output.future())
        resources = _sync_await(output.resources())
        monitor.run.output_dependencies[key] = {_sync_await(r.urn.future()) for r in resources}
    return monitor.run
