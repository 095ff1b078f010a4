"""What kubehop knows about one Helm addon, in one place: the `AddonSpec`.

Each addon module builds one spec; the catalog, config validation, the Addons
component, the gate arguments and the plan's impact text all read from it.
This module holds no versions and imports nothing from kubehop (the catalog
imports the addons).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


def minor_key(minor: str) -> tuple[int, int]:
    major, minor_ = str(minor).lstrip("v").split(".")[:2]
    return int(major), int(minor_)


def chart_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in str(version).lstrip("v").split("."))


@dataclass(frozen=True)
class ChartPin:
    """The chart (and image) kubehop installs for one Kubernetes minor and the
    range of chart versions its project documents for that minor."""

    chart_version: str
    image_tag: str | None
    compatible_charts: tuple[str, str]
    image_minor_must_match: bool = False


@dataclass(frozen=True)
class Line:
    """A chart series and the Kubernetes minors its project supports (inclusive)."""

    first: str
    last: str
    k8s: tuple[str, str]

    def holds(self, chart: str) -> bool:
        return chart_key(self.first) <= chart_key(chart) <= chart_key(self.last)

    def supports(self, minor: str) -> bool:
        return minor_key(self.k8s[0]) <= minor_key(minor) <= minor_key(self.k8s[1])


@dataclass(frozen=True)
class Breaking:
    """A release that changes behaviour: crossing `chart` needs the named preflight."""

    chart: str
    preflight: str
    why: str


@dataclass(frozen=True)
class CrdBundle:
    """CRDs applied server-side before the chart (Helm never upgrades `crds/`)."""

    url: str
    sha256: str


@dataclass(frozen=True)
class GateFlag:
    """One `addon-check` flag only this addon takes: argparse keywords, and its default."""

    flag: str
    default: Any = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class AddonGate:
    """The addon's own part of `python -m kubehop gate addon-check` (kubehop/gates/addons.py
    runs the common checks, then `check`)."""

    check: Callable[..., list[str]]
    """(kubectl, parsed args, the workloads' live pods) -> problems."""
    summary: str
    flags: tuple[GateFlag, ...] = ()
    settle: Callable[[Any], None] = lambda args: None
    """Check and complete this addon's flags; raise ValueError with the message (exit 2)."""


@dataclass(frozen=True)
class AddonSpec:
    name: str
    chart: str
    repo: str
    namespace: str
    release: str
    image_repository: str | None
    per_minor: dict[str, ChartPin]
    lines: tuple[Line, ...]
    source: str
    depends_on: tuple[str, ...]
    risk: str
    impact: str
    workloads: Callable[[str, dict[str, Any]], list[str]]
    """`kind/name` of the workloads the release runs, from the release name and its values
    (the chart's naming rules at the pinned versions)."""
    values: Callable[[Any, str | None], dict[str, Any]]
    """The values kubehop sets (cfg, image tag); none may change the data plane."""
    check: Callable[[Any, Any, str, dict[str, Any], "ChartPin"], list[str]]
    """`addon-check` arguments (cfg, addon config, release, merged values, pin)."""
    requires: Callable[[Any], list[tuple[str, str, str]]] = lambda addon: []
    """(config key, message, fix) for config the check needs and is missing."""
    workload_namespace: Callable[[str, dict[str, Any]], str] = lambda ns, values: ns
    breaking: tuple[Breaking, ...] = ()
    crds: dict[str, CrdBundle] = field(default_factory=dict)
    warning: str | None = None
    gate: AddonGate | None = None
    """Its check beyond the common one (None: the common checks only)."""

    def pin(self, minor: str) -> ChartPin:
        return self.per_minor[minor]

    def image_pinned_to_minor(self) -> bool:
        return any(p.image_minor_must_match for p in self.per_minor.values())

    def compatible(self, chart: str, minor: str) -> bool:
        """Whether chart version `chart` is documented to run with Kubernetes `minor`."""
        return any(line.holds(chart) and line.supports(minor) for line in self.lines)

    def choose(self, minor: str, running: str | None) -> str:
        """Minimal move, never down: keep the running chart while its project still
        supports the new minor or while it is newer than the catalog's pin for the
        minor (kubehop/addons/moves.py says why); otherwise the pin."""
        pin = self.per_minor[minor].chart_version
        if running and (self.compatible(running, minor) or chart_key(running) > chart_key(pin)):
            return running
        return pin

    def crossed(self, running: str | None, chosen: str) -> list[Breaking]:
        """Known breaking releases between the running chart and the chosen one."""
        if not running:
            return []
        return [b for b in self.breaking if chart_key(running) < chart_key(b.chart) <= chart_key(chosen)]


def fullname(release: str, name: str, values: dict[str, Any]) -> str:
    """`helm create`'s fullname rule (ingress-nginx and kube-state-metrics _helpers.tpl):
    fullnameOverride, else the release name when it contains the chart name, else
    `<release>-<name>`; truncated to 63."""
    if values.get("fullnameOverride"):
        return str(values["fullnameOverride"])[:63].rstrip("-")
    name = values.get("nameOverride") or name
    return (release if name in release else f"{release}-{name}")[:63].rstrip("-")
