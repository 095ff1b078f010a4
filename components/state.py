"""What the program reads before registering anything: the raw `kubehop:*`
config and what is deployed (the stack's own last outputs, via a
StackReference to itself, or the adopt config on the first run)."""
from __future__ import annotations

import pulumi
from pulumi.runtime import config as runtime_config
from pulumi.runtime.sync_await import _sync_await

from kubehop.catalog import Version
from kubehop.config import NS, StackConfig
from kubehop.hops import Deployed

OUTPUT = "kubehop"


def raw_config() -> tuple[dict[str, str], set[str]]:
    """Every `kubehop:*` key Pulumi gave the program, and which are secret."""
    raw = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    keys = {k: v for k, v in raw.items() if k.startswith(NS + ":")}
    secret = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    return keys, {k for k in keys if k in secret or runtime_config.is_config_secret(k)}


def _read_output(stack_name: str) -> dict | None:
    """The `kubehop` output of a stack, read once before any resource exists.

    A blocking read on purpose: the hop rules and the set of resources depend
    on it, and a bad hop must fail before anything is registered.
    """
    ref = pulumi.StackReference(f"ref-{stack_name.replace('/', '-')}", stack_name=stack_name)
    details = _sync_await(ref.get_output_details(OUTPUT))
    value = details.value if details.value is not None else details.secret_value
    return value if isinstance(value, dict) and value else None


def self_stack_name() -> str:
    return f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"


def deployed(cfg: StackConfig) -> tuple[Deployed, bool]:
    """The last outputs of this stack, or the adopt config for the first run
    (then True: kubehop is adopting the cluster)."""
    previous = _read_output(self_stack_name())
    if previous:
        return Deployed.from_output(previous), False
    cp = Version.parse(cfg.adopt.kubernetes_version)
    workers = Version.parse(cfg.adopt.worker_version) if cfg.adopt.worker_version else cp
    charts = {name: a.chart_version for name, a in cfg.adopt.addons.items() if a.chart_version}
    return Deployed(cp, workers, None, dict(cfg.adopt.amis), "serving", addons=charts), True


def sibling_traffic(cfg: StackConfig) -> str | None:
    if cfg.sibling is None:
        return None
    previous = _read_output(cfg.sibling.stack)
    return (previous or {}).get("traffic")
