"""What the program reads before registering anything (the raw `kubehop:*`
config and what is deployed), and the state it records for the next run.

What is deployed comes from the stack's own last `kubehop` output, read
through a StackReference to itself with the SDK's awaitable
`get_output_details` inside the program's async entrypoint (`pulumi.run`),
or from the adopt config on the first run. The recorded state is derived only
from the stdout of steps that ran (kubehop/record.py).
"""
from __future__ import annotations

from typing import Any, Mapping

import pulumi
import pulumi_aws as aws
from pulumi.runtime import config as runtime_config

from kubehop import cutover_record, record
from kubehop.config import StackConfig
from kubehop.hops import Deployed
from kubehop.problems import Problem

OUTPUT = "kubehop"


def raw_config() -> tuple[dict[str, str], set[str]]:
    """Every config key Pulumi gave the program (all namespaces: `aws:region` is
    compared and near-misses of `kubehop:` are refused), and which are secret."""
    raw = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    keys = dict(raw)
    secret = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    return keys, {k for k in keys if k in secret or runtime_config.is_config_secret(k)}


async def read_output(stack_name: str) -> dict | None:
    """The `kubehop` output of a stack, awaited before any other resource exists:
    the hop rules and the set of resources depend on it."""
    ref = pulumi.StackReference(f"ref-{stack_name.replace('/', '-')}", stack_name=stack_name)
    details = await ref.get_output_details(OUTPUT)
    value = details.value if details.value is not None else details.secret_value
    return value if isinstance(value, dict) and value else None


def self_stack_name() -> str:
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"


async def deployed(cfg: StackConfig) -> tuple[Deployed, bool, dict[str, Any]]:
    """What runs now, whether this run adopts the cluster (no recorded state),
    and the state to carry forward where no step of this run records anew."""
    previous = await read_output(self_stack_name())
    if previous:
        return Deployed.from_output(previous), False, previous
    state = record.adopted_state(cfg)
    return Deployed.from_output(state), True, state


async def cutover(cfg: StackConfig) -> cutover_record.Record:
    """The cluster's cutover record (kubehop/cutover_record.py), read live at
    preview and at `pulumi up`: what a maintenance transition changed that the
    stack outputs may not show (a failed run keeps the old outputs)."""
    if cfg.traffic is None:
        return cutover_record.Record()
    result = aws.ssm.get_parameters_by_path_output(path=cutover_record.path(cfg.cluster.name), recursive=True,
                                                   region=cfg.cluster.region, with_decryption=False)
    values = await result.apply(lambda r: {"names": list(r.names or []), "values": list(r.values or [])}).future()
    if values is None:  # unknown (never for known arguments): refuse rather than read it as empty
        raise cutover_record.RecordError([Problem(
            key=cutover_record.path(cfg.cluster.name), secret=True, message="could not be read before registering anything",
            fix="check the AWS credentials reach SSM in the cluster's region (ssm:GetParametersByPath), then re-run")])
    return cutover_record.from_invoke(cfg.cluster.name, values)


async def sibling_traffic(cfg: StackConfig) -> str | None:
    if cfg.sibling is None:
        return None
    previous = await read_output(cfg.sibling.stack)
    return (previous or {}).get("traffic")


def recorded(previous: Mapping[str, Any], steps: Mapping[str, pulumi.Resource],
             built: Mapping[str, pulumi.Output]) -> pulumi.Output:
    """The `kubehop` output: `previous`, moved only by the stdout of the steps
    in `steps` (role -> Command, see record.recorded_state) and the versions
    the image builds' own state says they were built for."""
    keys, outs = list(steps), [steps[k].stdout for k in steps]
    roles = list(built)
    return pulumi.Output.all(*outs, *[built[r] for r in roles]).apply(
        lambda values: record.recorded_state(previous, dict(zip(keys, values[:len(keys)], strict=True)),
                                             dict(zip(roles, values[len(keys):], strict=True))))
