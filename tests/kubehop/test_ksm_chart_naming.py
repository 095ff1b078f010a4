"""kube-state-metrics' workload, namespace and Service follow the chart's templates
at every pinned version (prometheus-community/helm-charts tags kube-state-metrics-5.11.1
... -6.1.5: templates/_helpers.tpl fullname/namespace, deployment.yaml kind, service.yaml port)."""
from types import SimpleNamespace

from kubehop.addons import kube_state_metrics as ksm

ADDON = SimpleNamespace(namespace=None, prometheus_url=None)


def _check(release: str, values: dict) -> list[str]:
    return ksm.SPEC.check(None, ADDON, release, values, ksm.SPEC.pin("1.29"))


def test_fullname_rule_and_defaults():
    assert ksm.SPEC.workloads("kube-state-metrics", {}) == ["deployment/kube-state-metrics"]
    assert ksm.SPEC.workloads("monitoring", {}) == ["deployment/monitoring-kube-state-metrics"]
    assert ksm.SPEC.workloads("x", {"fullnameOverride": "ksm"}) == ["deployment/ksm"]
    assert ksm.SPEC.workloads("my-ksm", {"nameOverride": "ksm"}) == ["deployment/my-ksm"]  # release contains the name
    args = _check("kube-state-metrics", {})
    assert args[:2] == ["--namespace", "kube-system"] and "kube-state-metrics:8080" in args


def test_autosharding_makes_a_statefulset_and_namespace_override_moves_it():
    values = {"autosharding": {"enabled": True}, "namespaceOverride": "monitoring", "service": {"port": 9090}}
    assert ksm.SPEC.workloads("kube-state-metrics", values) == ["statefulset/kube-state-metrics"]
    args = _check("kube-state-metrics", values)
    assert args[:2] == ["--namespace", "monitoring"]
    assert "statefulset/kube-state-metrics" in args and "kube-state-metrics:9090" in args
    assert ksm.SPEC.workload_namespace("kube-system", values) == "monitoring"
