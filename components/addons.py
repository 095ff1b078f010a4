"""Addons as Helm releases that follow the control plane (runbook 2, 6.3.2, 6.4.2).

One release per addon, versions from the catalog for the hop's minor (or a
validated pin), values from config merged over defaults, each followed by a
check gate. Releases go one at a time: calico, CCM, cluster-autoscaler,
kube-state-metrics, ingress-nginx; the first waits for the last master.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.steps import gate_step
from kubehop import catalog
from kubehop.config import AddonConfig, StackConfig
from kubehop.hops import Hop


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Config values win; nested maps merge key by key."""
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def default_values(name: str, cfg: StackConfig, image_tag: str | None) -> dict[str, Any]:
    """Sane defaults per addon: cluster name, region, discovery tags, image pins."""
    cluster, region = cfg.cluster.name, cfg.cluster.region
    repository = catalog.ADDONS[name].image_repository
    image = {**({"repository": repository} if repository else {}), **({"tag": image_tag} if image_tag else {})}
    if name == "aws-cloud-controller-manager":
        return {"image": image, "args": ["--v=2", "--cloud-provider=aws", f"--cluster-name={cluster}"],
                "nodeSelector": {"node-role.kubernetes.io/control-plane": ""}}
    if name == "cluster-autoscaler":
        return {"cloudProvider": "aws", "awsRegion": region, "image": image,
                "autoDiscovery": {"clusterName": cluster,
                                  "tags": ["k8s.io/cluster-autoscaler/enabled", f"k8s.io/cluster-autoscaler/{cluster}"]},
                "extraArgs": {"balance-similar-node-groups": True, "skip-nodes-with-local-storage": False}}
    if name == "kube-state-metrics":
        return {"image": image} if image else {}
    if name == "ingress-nginx":
        return {"controller": {"service": {"annotations": {
            "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
            "service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled": "true"}}}}
    if name == "calico":
        return {"installation": {"kubernetesProvider": "", "cni": {"type": "Calico"},
                                 "calicoNetwork": {"bgp": "Disabled"}}}
    return {}


def resolve_pin(name: str, minor: str, addon: AddonConfig) -> tuple[str, str | None]:
    """Chart version and image tag for this minor: the config pin or the catalog's."""
    pin = catalog.addon_pin(name, minor)
    return addon.chart_version or pin.chart_version, addon.image_tag or pin.image_tag


def check_args(name: str, namespace: str, release: str, addon: AddonConfig, image_tag: str | None) -> list[str]:
    """Arguments of the `addon-check` gate for one addon."""
    args = ["--addon", name, "--namespace", namespace]
    workloads = {
        "calico": ["daemonset/calico-node", "deployment/calico-kube-controllers"],
        # the chart names its DaemonSet after itself, whatever the release is called
        "aws-cloud-controller-manager": ["daemonset/aws-cloud-controller-manager"],
        "cluster-autoscaler": [f"deployment/{release}-aws-cluster-autoscaler"],
        "kube-state-metrics": [f"deployment/{release}"],
        "ingress-nginx": [f"deployment/{release}-controller"],
    }[name]
    if name == "calico":
        args = ["--addon", name, "--namespace", "calico-system"]
    for workload in workloads:
        args += ["--workload", workload]
    if image_tag and any(p.image_minor_must_match for p in catalog.ADDONS[name].per_minor.values()):
        args += ["--image-tag", image_tag]
    if addon.metrics_url:
        args += ["--metrics-url", addon.metrics_url]
    for url in addon.check_urls:
        args += ["--url", url]
    if name == "calico":
        args += ["--probe-from", addon.probe_from, "--probe-to", addon.probe_to]
    return args


@dataclass
class AddonsArgs:
    config: StackConfig
    hop: Hop
    kubeconfig: pulumi.Input[str]
    provider: k8s.Provider
    after: pulumi.Resource
    """The control plane's last step: no addon moves before every master is back."""


class Addons(pulumi.ComponentResource):
    """Helm releases with a check after each; `checks[name]` is the addon's check step."""

    def __init__(self, name: str, args: AddonsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("kubehop:index:Addons", name, None, opts)
        cfg, minor = args.config, args.hop.control_plane.minor_str
        provider = args.provider
        self.releases: dict[str, k8s.helm.v3.Release] = {}
        self.checks: dict[str, pulumi.Resource] = {}
        previous = args.after
        for addon_name in catalog.ADDON_ORDER:
            addon = cfg.addons.get(addon_name)
            if not addon.enabled:
                continue
            spec = catalog.ADDONS[addon_name]
            chart_version, image_tag = resolve_pin(addon_name, minor, addon)
            namespace = addon.namespace or spec.namespace
            release_name = addon.release_name or spec.release
            values = deep_merge(default_values(addon_name, cfg, image_tag), addon.values)
            release = k8s.helm.v3.Release(
                f"{addon_name}-addon",
                name=release_name,
                chart=spec.chart,
                version=chart_version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=spec.repo),
                namespace=namespace,
                create_namespace=False,
                values=values,
                atomic=True,
                cleanup_on_fail=True,
                timeout=cfg.addons.timeout_seconds,
                max_history=10,
                opts=pulumi.ResourceOptions(
                    parent=self, provider=provider, depends_on=[previous],
                    # adopt the release already in the cluster under its name and namespace
                    import_=f"{namespace}/{release_name}", retain_on_delete=True))
            check = gate_step(
                f"{addon_name}-addon-check", gate="addon-check",
                args=check_args(addon_name, namespace, release_name, addon, image_tag) + ["--timeout", str(cfg.addons.timeout_seconds)],
                triggers=[chart_version, image_tag or "", str(args.hop.control_plane)],
                kubeconfig=args.kubeconfig, parent=self, depends_on=[release])
            self.releases[addon_name] = release
            self.checks[addon_name] = check
            previous = check
        self.last = previous
        self.register_outputs({"charts": {n: r.version for n, r in self.releases.items()}})
