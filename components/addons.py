"""Addons as Helm releases that follow the control plane (runbook 2, 6.3.2, 6.4.2).

Everything about one addon comes from its module in kubehop/addons/. Per hop:
the chart moves only when the running chart leaves its project's compatibility
range for the new minor (or a minor-pinned image moves); crossing a known
breaking release runs its preflight first; calico's CRDs are applied
server-side before the tigera-operator release (Tigera's upgrade procedure).
Releases follow their dependencies: calico, then CCM, then cluster-autoscaler,
kube-state-metrics and ingress-nginx side by side, each with its own check.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.steps import gate_step
from kubehop import catalog
from kubehop.addons import moves
from kubehop.addons.base import AddonSpec
from kubehop.config import StackConfig
from kubehop.hops import Hop


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Config values win; nested maps merge key by key."""
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@dataclass
class AddonsArgs:
    config: StackConfig
    hop: Hop
    kubeconfig: pulumi.Input[str]
    provider: k8s.Provider
    after: pulumi.Resource
    """The control plane's last step: no addon moves before every master is back."""
    adopting: bool = False
    """The adoption run: releases listed in `adopt.addons` are imported as they run."""


def imported_release(addon_name: str, chart: str, release_name: str, namespace: str, version: str,
                     values: dict[str, Any], opts: pulumi.ResourceOptions) -> k8s.helm.v3.Release:
    """The adoption run's release: only what an import reads back.

    pulumi-kubernetes `provider/pkg/provider/helm_release.go` Read ->
    setReleaseAttributes/importRelease/setDefaults: an imported Release has
    name, namespace, chart, version, the user-supplied values (`release.Config`)
    and timeout 300, nothing else (no atomic, cleanupOnFail, maxHistory,
    repositoryOpts; pulumi-kubernetes#1818, #2136). Any other input would make
    the import differ (refused before pulumi 3.174, a `helm upgrade` in the same
    run from 3.174, pulumi/pulumi#19339). The chart reads back as `repo/chart`
    when a local Helm repository lists it, so it is ignored here; the next run
    declares kubehop's chart source and settings as an ordinary update.
    """
    return k8s.helm.v3.Release(
        f"{addon_name}-addon", name=release_name, chart=chart, version=version,
        namespace=namespace, values=dict(values),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            import_=f"{namespace}/{release_name}", retain_on_delete=True, ignore_changes=["chart"])))


class Addons(pulumi.ComponentResource):
    """Helm releases with a check after each; `checks[name]` is the addon's check step."""

    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubehop:index:Addons", name, None, opts)
        self._args = args
        self.releases: dict[str, k8s.helm.v3.Release] = {}
        self.checks: dict[str, pulumi.Resource] = {}
        for addon_name, spec in catalog.ADDONS.items():
            if args.config.addons.get(addon_name).enabled:
                self._addon(spec)
        self.last = list(self.checks.values()) or [args.after]
        self.register_outputs({})

    def _after(self, spec: AddonSpec) -> list[pulumi.Resource]:
        """The checks of the enabled addons this one depends on (else the control plane)."""
        deps = [self.checks[d] for d in spec.depends_on if d in self.checks]
        return deps or [self._args.after]

    def _gate(self, step: str, gate: str, args: list[str], triggers: list[str], after: list[pulumi.Resource]):
        return gate_step(step, gate=gate, args=args, triggers=triggers, kubeconfig=self._args.kubeconfig,
                         parent=self, depends_on=after)

    def _addon(self, spec: AddonSpec) -> None:
        cfg, hop = self._args.config, self._args.hop
        addon = cfg.addons.get(spec.name)
        adopted = cfg.adopt.addons.get(spec.name) if self._args.adopting else None
        chosen = moves.choose(spec, hop, addon, adopted)  # the chart the release runs after this run
        namespace = addon.namespace or spec.namespace
        release_name = addon.release_name or spec.release
        values = deep_merge(spec.values(cfg, chosen.image_tag), addon.values)
        before = self._after(spec)
        for breaking in spec.crossed(moves.running_chart(spec, hop.deployed), chosen.chart_version):
            before = [self._gate(f"{spec.name}-addon-preflight", breaking.preflight, [], [chosen.chart_version], before)]
        bundle = spec.crds.get(chosen.chart_version)
        if spec.crds:
            if bundle is None:
                raise pulumi.RunError(f"{spec.name} {chosen.chart_version}: the catalog has no CRD bundle (url, sha256) for it")
            # Helm never upgrades crds/: apply the target's CRDs server-side first.
            before = [self._gate(f"{spec.name}-addon-crds", "crd-apply",
                                 ["--url", bundle.url, "--sha256", bundle.sha256, "--timeout", "300"],
                                 [bundle.url, bundle.sha256], before)]
        if adopted is not None:
            release = imported_release(spec.name, spec.chart, release_name, namespace, chosen.chart_version, adopted.values,
                                       pulumi.ResourceOptions(parent=self, provider=self._args.provider, depends_on=before))
        else:
            release = k8s.helm.v3.Release(
                f"{spec.name}-addon",
                name=release_name,
                chart=spec.chart,
                version=chosen.chart_version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=spec.repo),
                namespace=namespace,
                create_namespace=False,
                values=values,
                atomic=True,
                cleanup_on_fail=True,
                timeout=cfg.addons.timeout_seconds,
                max_history=10,
                opts=pulumi.ResourceOptions(parent=self, provider=self._args.provider, depends_on=before,
                                            retain_on_delete=True))
        # --release/--chart-version: the check proves the chart the recorded state says runs (kubehop/record.py)
        check_args = ["--addon", spec.name, *spec.check(cfg, addon, release_name, values, chosen),
                      "--release", f"{namespace}/{release_name}", "--chart-version", chosen.chart_version,
                      "--timeout", str(cfg.addons.timeout_seconds)]
        self.checks[spec.name] = self._gate(
            f"{spec.name}-addon-check", "addon-check", check_args,
            [chosen.chart_version, chosen.image_tag or "", str(hop.control_plane)], [release])
        self.releases[spec.name] = release
