"""Which chart each addon runs after a hop: the minimal move, never a downgrade.

Plain Python shared by the Addons component, the program's checks before it
registers anything, and the offline plan's warnings.

Rules, in order:
- The adoption run installs nothing new for an adopted release: it is
  imported at the chart it runs (`adopt.addons.<name>.chartVersion`), so its
  CRDs and its check use that chart too.
- A config pin (`addons.<name>.chartVersion`) wins, but never below the
  running chart (refused, exit 2).
- Otherwise the running chart stays while its project supports the new minor,
  or while it is newer than the catalog's pick for the minor: Helm, Tigera and
  the chart projects document upgrades only (a tigera-operator downgrade would
  leave the newer CRDs and Installation fields behind), and a cluster that
  already runs the newer release works with it. The plan warns when a kept
  release is outside its project's tested range.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from kubehop import catalog
from kubehop.addons.base import AddonSpec, ChartPin, chart_key
from kubehop.config import NS, ConfigProblem, StackConfig


def running_chart(spec: AddonSpec, deployed: Any) -> str | None:
    """What the release runs now: recorded by the last run or given in adopt.addons,
    else the catalog's pin for the deployed minor (what kubehop would have installed)."""
    recorded = deployed.addons.get(spec.name)
    if recorded:
        return recorded
    pin = spec.per_minor.get(deployed.control_plane.minor_str)
    return pin.chart_version if pin else None


def choose(spec: AddonSpec, hop: Any, addon: Any, adopted: Any = None) -> ChartPin:
    """The chart and image for this run. `adopted` is the addon's `adopt.addons`
    entry on the adoption run (the release is imported as it runs)."""
    minor = hop.control_plane.minor_str
    pin = spec.per_minor[minor]
    running = running_chart(spec, hop.deployed)
    if adopted is not None and adopted.chart_version:
        chart = adopted.chart_version
    else:
        chart = addon.chart_version or spec.choose(minor, running)
    image = addon.image_tag or (pin.image_tag if spec.image_pinned_to_minor() else None)
    return dataclasses.replace(pin, chart_version=chart, image_tag=image)


def downgrades(cfg: StackConfig, deployed: Any) -> list[ConfigProblem]:
    """Each enabled addon whose config pin is older than the chart it runs:
    refused before anything is registered (kubehop never downgrades an addon)."""
    out = []
    for name, spec in catalog.ADDONS.items():
        addon = cfg.addons.get(name)
        running = running_chart(spec, deployed)
        if addon.enabled and addon.chart_version and running and chart_key(addon.chart_version) < chart_key(running):
            out.append(ConfigProblem(
                key=f"{NS}:addons.{name}.chartVersion", value=addon.chart_version,
                message=f"is older than the chart the release runs ({running}): kubehop never downgrades an addon",
                fix=f"remove the pin, or pin {running} or newer"))
    return out


def outside_range(minor: str, charts: dict[str, str]) -> list[str]:
    """Warnings for releases that run at Kubernetes `minor` although their project
    does not list it: kept because they are newer than the catalog's pick."""
    out = []
    for name, chart in sorted(charts.items()):
        spec = catalog.ADDONS.get(name)
        if spec is None or minor not in spec.per_minor or spec.compatible(chart, minor):
            continue
        out.append(f"{name} {chart} runs at Kubernetes {minor}, which its project does not list as supported: kept "
                   f"because it is newer than the catalog's pick ({spec.per_minor[minor].chart_version}) and kubehop "
                   f"never downgrades an addon; it moves when a later minor leaves its range")
    return out
