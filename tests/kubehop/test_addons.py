"""The addon modules: minimal moves, breaking-release preflights, CRD checksums,
naming rules, and that adding an addon needs only its module."""
import hashlib

import pytest

from kubehop import catalog
from kubehop.addons import SPECS, calico, cluster_autoscaler, ingress_nginx, kube_state_metrics
from kubehop.gates.addon_steps import ingress_breaks, verified
from kubehop.gates.common import GateError


@pytest.mark.parametrize("name,running,minor,expected", [
    ("ingress-nginx", "4.11.8", "1.28", "4.11.8"),   # v1.11.8 lists 1.26-1.30: stays
    ("ingress-nginx", "4.11.8", "1.29", "4.11.8"),
    ("ingress-nginx", "4.11.8", "1.30", "4.11.8"),
    ("ingress-nginx", "4.11.8", "1.31", "4.15.1"),   # leaves its range: the catalog's pin
    ("calico", "3.28.5", "1.28", "3.28.5"),
    ("calico", "3.26.5", "1.28", "3.26.5"),
    ("calico", "3.28.5", "1.29", "3.28.5"),          # 3.28 tested 1.27-1.30
    ("calico", "3.26.5", "1.29", "3.29.7"),          # once, not via 3.28
    ("calico", "3.28.5", "1.31", "3.30.7"),
    ("kube-state-metrics", "5.11.1", "1.27", "5.16.4"),
    ("cluster-autoscaler", "9.28.0", "1.27", "9.33.0"),
    ("ingress-nginx", None, "1.28", "4.12.8"),       # unknown: the pin
])
def test_an_addon_moves_only_when_its_chart_leaves_the_range(name, running, minor, expected):
    assert SPECS[name].choose(minor, running) == expected


def test_only_crossing_v1_12_needs_the_ingress_preflight():
    spec = ingress_nginx.SPEC
    assert [b.preflight for b in spec.crossed("4.11.8", "4.15.1")] == ["ingress-1.12"]
    assert spec.crossed("4.11.8", "4.11.8") == [] and spec.crossed("4.12.8", "4.13.9") == []


def test_every_calico_pin_has_a_crd_bundle_with_a_real_checksum():
    for minor in catalog.known_minors():
        pin = calico.SPEC.per_minor.get(minor)
        if pin:
            bundle = calico.SPEC.crds[pin.chart_version]
            assert bundle.url == f"https://raw.githubusercontent.com/projectcalico/calico/v{pin.chart_version}/manifests/operator-crds.yaml"
            assert len(bundle.sha256) == 64 and set(bundle.sha256) != {"0"}


def test_crd_checksum_refuses_placeholders_and_mismatches():
    body = b"kind: CustomResourceDefinition\n"
    assert verified(body, hashlib.sha256(body).hexdigest()) == body
    for bad, why in (("0" * 64, "placeholder"), ("placeholder", "placeholder"),
                     (hashlib.sha256(b"other").hexdigest(), "checksum mismatch")):
        with pytest.raises(GateError, match=why):
            verified(body, bad)


def test_ingress_preflight_names_what_v1_12_breaks():
    def ing(annotations=None, path="/api", kind="Prefix"):
        return {"metadata": {"namespace": "prod", "name": "api", "annotations": annotations or {}},
                "spec": {"rules": [{"http": {"paths": [{"path": path, "pathType": kind}]}}]}}
    assert ingress_breaks(ing()) == []
    assert ingress_breaks(ing(path="/api(/|$)(.*)", kind="ImplementationSpecific")) == []
    assert "configuration-snippet" in ingress_breaks(ing({"nginx.ingress.kubernetes.io/configuration-snippet": "x"}))[0]
    assert "global-rate-limit" in ingress_breaks(ing({"nginx.ingress.kubernetes.io/global-rate-limit": "10"}))[0]
    assert "not a plain path" in ingress_breaks(ing(path="/api(/|$)(.*)"))[0]


def test_workload_names_follow_the_charts_naming_rules():
    assert cluster_autoscaler.deployment_name("cluster-autoscaler", {}) == "cluster-autoscaler-aws-cluster-autoscaler"
    assert cluster_autoscaler.deployment_name("aws-cluster-autoscaler", {}) == "aws-cluster-autoscaler"
    assert cluster_autoscaler.deployment_name("ca", {"fullnameOverride": "autoscaler"}) == "autoscaler"
    assert ingress_nginx.controller("ingress-nginx", {}) == "ingress-nginx-controller"
    assert ingress_nginx.controller("edge", {}) == "edge-ingress-nginx-controller"
    assert kube_state_metrics.SPEC.workloads("ksm", {}) == ["deployment/ksm-kube-state-metrics"]
    assert SPECS["aws-cloud-controller-manager"].workloads("ccm", {}) == ["daemonset/aws-cloud-controller-manager"]


def test_no_data_plane_defaults_on_adopted_releases():
    class Cfg:
        class cluster:
            name, region = "c", "us-west-2"
    assert "calicoNetwork" not in str(calico.SPEC.values(Cfg, None))
    assert ingress_nginx.SPEC.values(Cfg, None) == {}


def test_dependencies_name_known_addons_and_come_first():
    order = list(SPECS)
    for name, spec in SPECS.items():
        for dep in spec.depends_on:
            assert order.index(dep) < order.index(name)
    assert catalog.ADDON_ORDER == tuple(order)
