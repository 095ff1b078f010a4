"""Run the gate steps a program run registered, as pulumi-command's `local.Command` would:
its `create` through bash in the project directory with its `environment` (secrets in the
clear, from engine.run_program(reveal=True)), one after another in registration order (every
step is registered after what it depends on), stopping at the first that fails.

`shorten` changes time only: the canary's watch window and a gate's poll bound, so a test
need not wait the minutes production waits. Every other argument runs as registered.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kubehop.plan import engine

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Ran:
    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def children(run: engine.Run, component_type: str, component_name: str) -> list[engine.Registered]:
    """The local Commands of one component, in registration order."""
    parent = next((urn for urn, r in run.resources.items() if r.type == component_type and r.name == component_name), None)
    return [r for r in run.resources.values() if parent and r.parent == parent and r.type == "command:local:Command"]


def _argv_with(create: str, changes: dict[str, str]) -> str:
    words = shlex.split(create)
    for flag, value in changes.items():
        if flag in words:
            words[words.index(flag) + 1] = value
        else:
            words += [flag, value]
    return " ".join(shlex.quote(w) for w in words)


def execute(steps: list[engine.Registered], env: dict[str, str], *,
            shorten: dict[str, dict[str, str]] | None = None) -> list[Ran]:
    """Run each step until one fails; what each printed. `shorten`: step-name suffix -> {flag: value}."""
    done: list[Ran] = []
    for step in steps:
        inputs = step.revealed or {}
        create = inputs["create"]
        for suffix, changes in (shorten or {}).items():
            if step.name.endswith(suffix):
                create = _argv_with(create, changes)
        child_env = {**env, **(inputs.get("environment") or {}), "KUBEHOP_PYTHON": sys.executable}
        started = time.monotonic()
        result = subprocess.run(["bash", "-c", create], cwd=REPO, env=child_env, capture_output=True, text=True,
                                timeout=120, stdin=subprocess.DEVNULL, check=False)
        done.append(Ran(step.name, result.returncode, result.stdout, result.stderr, time.monotonic() - started))
        if result.returncode != 0:
            break
    return done


def base_env(bin_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    """The machine's environment with `bin_dir` first on PATH (the kubectl to use) and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBEHOP_")}
    env.update(extra)
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '')}"
    return env
