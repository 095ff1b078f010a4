#!/usr/bin/env python3
"""Read kubehop's node-settings.yaml for the Packer provisioning scripts.

Why this exists: node-settings.yaml is the single source of node settings
(kernel modules, sysctls, swap, containerd cgroup driver, kubelet extra args,
systemd units). The shell scripts must not carry their own copy of those
values, so they ask this helper for them. It validates the whole file first,
so a typo fails the AMI build with a clear message instead of producing a
node that never becomes Ready.

Runs on the build instance with Ubuntu's python3 and python3-yaml (3.10 on
jammy): standard library plus PyYAML only.

Usage: nodesettings.py SETTINGS_FILE COMMAND [ARG]

  check          validate the file, print nothing
  get KEY        a dotted key: scalars print as-is (booleans as true/false),
                 lists one item per line; maps are refused
  modules-load   the modules-load.d file content
  sysctl-conf    the sysctl.d file content
  kubelet-env    the /etc/default/kubelet content (KUBELET_EXTRA_ARGS=...)
"""
from __future__ import annotations

import re
import sys

sys.dont_write_bytecode = True

SCHEMA_VERSION = 1
_HEADER = "# Managed by kubehop from node-settings.yaml; edits are overwritten.\n"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SYSCTL_KEY = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_-]+)+$")
_SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.,:=/@+-]+$")
_PATH_KEYS = ("modules_load", "sysctl", "containerd_config", "kubelet_env", "installed_settings")


class SettingsError(Exception):
    """The settings file is unreadable or does not match the schema."""


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise SettingsError(message)


def _is_scalar(value: object) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def validate(data: object) -> dict:
    """Check the structure and every value that ends up in a system file."""
    _require(isinstance(data, dict), "top level must be a mapping")
    assert isinstance(data, dict)
    _require(
        data.get("schema_version") == SCHEMA_VERSION,
        f"schema_version must be {SCHEMA_VERSION}, got {data.get('schema_version')!r}",
    )
    paths = data.get("paths")
    _require(isinstance(paths, dict), "paths: must be a mapping")
    for key in _PATH_KEYS:
        value = paths.get(key)
        _require(
            isinstance(value, str) and value.startswith("/") and ".." not in value,
            f"paths.{key}: must be an absolute path without '..', got {value!r}",
        )
    modules = data.get("kernel_modules")
    _require(isinstance(modules, list) and modules, "kernel_modules: must be a non-empty list")
    for module in modules:
        _require(isinstance(module, str) and bool(_NAME.match(module)), f"kernel_modules: bad name {module!r}")
    sysctls = data.get("sysctls")
    _require(isinstance(sysctls, dict) and sysctls, "sysctls: must be a non-empty mapping")
    for key, value in sysctls.items():
        _require(isinstance(key, str) and bool(_SYSCTL_KEY.match(key)), f"sysctls: bad key {key!r}")
        _require(
            _is_scalar(value) and bool(_SAFE_VALUE.match(str(value))),
            f"sysctls.{key}: value must be a plain number or word, got {value!r}",
        )
    swap = data.get("swap")
    _require(
        isinstance(swap, dict) and isinstance(swap.get("disabled"), bool),
        "swap.disabled: must be true or false",
    )
    packages = data.get("packages")
    _require(isinstance(packages, dict), "packages: must be a mapping")
    prereqs = packages.get("prerequisites")
    _require(isinstance(prereqs, list), "packages.prerequisites: must be a list")
    for name in prereqs:
        _require(isinstance(name, str) and bool(_NAME.match(name)), f"packages.prerequisites: bad name {name!r}")
    containerd = data.get("containerd")
    _require(
        isinstance(containerd, dict) and isinstance(containerd.get("systemd_cgroup"), bool),
        "containerd.systemd_cgroup: must be true or false",
    )
    kubelet = data.get("kubelet")
    _require(isinstance(kubelet, dict), "kubelet: must be a mapping")
    extra = kubelet.get("extra_args")
    _require(isinstance(extra, dict), "kubelet.extra_args: must be a mapping (may be empty: {})")
    for flag, value in extra.items():
        _require(
            isinstance(flag, str) and bool(_NAME.match(flag)) and not flag.startswith("-"),
            f"kubelet.extra_args: bad flag name {flag!r} (write it without leading dashes)",
        )
        _require(
            _is_scalar(value) or isinstance(value, bool),
            f"kubelet.extra_args.{flag}: value must be a scalar",
        )
        _require(
            bool(_SAFE_VALUE.match(_render(value))),
            f"kubelet.extra_args.{flag}: value {value!r} has characters that need quoting",
        )
    systemd = data.get("systemd")
    _require(isinstance(systemd, dict), "systemd: must be a mapping")
    units = systemd.get("enable")
    _require(isinstance(units, list), "systemd.enable: must be a list")
    for unit in units:
        _require(isinstance(unit, str) and bool(_NAME.match(unit)), f"systemd.enable: bad unit {unit!r}")
    return data


def load(path: str) -> dict:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the image
        raise SettingsError("python3-yaml is not installed (apt-get install python3-yaml)") from exc
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path} is not valid YAML: {exc}") from exc
    return validate(data)


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def get(data: dict, key: str) -> str:
    node: object = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise SettingsError(f"no setting {key!r}")
        node = node[part]
    if isinstance(node, dict):
        raise SettingsError(f"setting {key!r} is a mapping; ask for one of its keys")
    if isinstance(node, list):
        return "".join(f"{_render(item)}\n" for item in node)
    return f"{_render(node)}\n"


def modules_load(data: dict) -> str:
    return _HEADER + "".join(f"{module}\n" for module in data["kernel_modules"])


def sysctl_conf(data: dict) -> str:
    return _HEADER + "".join(f"{key} = {_render(value)}\n" for key, value in data["sysctls"].items())


def kubelet_env(data: dict) -> str:
    args = " ".join(f"--{flag}={_render(value)}" for flag, value in data["kubelet"]["extra_args"].items())
    return f'{_HEADER}KUBELET_EXTRA_ARGS="{args}"\n'


_RENDERERS = {"modules-load": modules_load, "sysctl-conf": sysctl_conf, "kubelet-env": kubelet_env}


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: nodesettings.py SETTINGS_FILE {check|get KEY|modules-load|sysctl-conf|kubelet-env}", file=sys.stderr)
        return 2
    path, command, rest = argv[0], argv[1], argv[2:]
    try:
        data = load(path)
        if command == "check" and not rest:
            return 0
        if command == "get" and len(rest) == 1:
            sys.stdout.write(get(data, rest[0]))
            return 0
        if command in _RENDERERS and not rest:
            sys.stdout.write(_RENDERERS[command](data))
            return 0
    except SettingsError as exc:
        print(f"nodesettings: {path}: {exc}", file=sys.stderr)
        return 1
    print(f"nodesettings: unknown command {' '.join(argv[1:])!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
