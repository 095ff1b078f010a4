"""The version catalog: consistent, sourced, and the only home of versions."""
from __future__ import annotations

import re

import pytest

from kubehop import catalog
from kubehop.catalog import Version
from tests.plan_helpers import ROOT

MINORS = [f"1.{m}" for m in range(24, 33)]


def test_every_minor_has_an_exact_patch_and_repo():
    assert catalog.known_minors() == MINORS
    for minor in MINORS:
        rel = catalog.release(minor)
        assert rel.patch.startswith(minor + ".")
        assert rel.repo_url == f"https://pkgs.k8s.io/core:/stable:/v{minor}/deb/"
        assert rel.repo_key_url.endswith(f"/v{minor}/deb/Release.key")
        assert rel.containerd_min


def test_facts_from_the_reference():
    assert catalog.release("1.26").patch == "1.26.15"
    assert catalog.release("1.29").patch == "1.29.15"
    assert catalog.release("1.32").patch == "1.32.13"
    assert catalog.max_kubelet_skew(Version.parse("1.28")) == 3
    assert catalog.max_kubelet_skew(Version.parse("1.27")) == 2


@pytest.mark.parametrize("minor", [f"1.{m}" for m in range(26, 33)])
def test_addon_pins_are_compatible_with_their_own_minor(minor):
    for name in catalog.ADDON_ORDER:
        pin = catalog.addon_pin(name, minor)
        assert catalog.pin_is_compatible(name, minor, pin.chart_version), (name, minor)
        if pin.image_minor_must_match:
            assert pin.image_tag.lstrip("v").startswith(minor + "."), (name, minor, pin.image_tag)


def test_containerd_satisfies_every_minor():
    chosen = Version.parse(catalog.CONTAINERD_VERSION)
    for minor in MINORS:
        same_line = [Version.parse(v) for v in catalog.release(minor).containerd_min if v.startswith("1.7")]
        assert all(chosen >= v for v in same_line), minor


def test_pause_image_follows_kubeadm_per_minor():
    """kubeadm's PauseVersion (catalog SOURCES["pause"]): 3.9 from 1.26, 3.10 from 1.31."""
    tags = {minor: catalog.release(minor).pause for minor in MINORS}
    assert {m for m, t in tags.items() if t == "3.10"} == {m for m in MINORS if Version.parse(m) >= Version.parse("1.31")}
    assert all(tags[m] == "3.9" for m in MINORS if Version.parse("1.26") <= Version.parse(m) < Version.parse("1.31"))
    assert catalog.release("1.28").pause_image == "registry.k8s.io/pause:3.9"


def test_every_source_is_noted():
    for name in catalog.ADDONS:
        assert name in catalog.SOURCES


def test_resolve():
    assert str(catalog.resolve("1.27")) == "1.27.16"
    assert str(catalog.resolve("v1.27.10")) == "1.27.10"
    with pytest.raises(catalog.CatalogError):
        catalog.resolve("1.27.17")
    with pytest.raises(catalog.CatalogError):
        catalog.resolve("1.33")


def test_no_version_literal_outside_the_catalog():
    literal = re.compile(r"['\"]v?1\.(2[4-9]|3[0-2])\.\d+['\"]")
    offenders = []
    for path in list((ROOT / "components").rglob("*.py")) + list((ROOT / "kubehop").rglob("*.py")) + [ROOT / "__main__.py"]:
        if path.name == "catalog.py" or path.parent.name == "addons":  # addon modules: the catalog's addon part
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if literal.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


# --- every patch and chart, checked against ../shared/reference/version-facts.md ---------------
# Transcribed from that file (collected 2026-11/12 with its sources) as a table of its own, so a
# change to the catalog has to agree with the reference, not with itself.
FACT_PATCHES = {"1.24": "1.24.17", "1.25": "1.25.16", "1.26": "1.26.15", "1.27": "1.27.16", "1.28": "1.28.15",
                "1.29": "1.29.15", "1.30": "1.30.14", "1.31": "1.31.14", "1.32": "1.32.13"}
FACT_CONTAINERD = {"1.26": ("1.7.0", "1.6.15"), "1.27": ("1.7.0", "1.6.15"), "1.28": ("1.7.0", "1.6.15"),
                   "1.29": ("1.7.11", "1.6.27"), "1.30": ("2.0.0", "1.7.13", "1.6.28"),
                   "1.31": ("2.0.0", "1.7.20", "1.6.34"), "1.32": ("2.0.1", "1.7.24", "1.6.36")}
# k8s minor -> (last image tag, chart range) for cluster-autoscaler
FACT_CA = {"1.26": ("v1.26.8", ("9.28.0", "9.28.0")), "1.27": ("v1.27.8", ("9.29.1", "9.33.0")),
           "1.28": ("v1.28.7", ("9.34.0", "9.34.1")), "1.29": ("v1.29.5", ("9.35.0", "9.36.0")),
           "1.30": ("v1.30.7", ("9.37.0", "9.37.0")), "1.31": ("v1.31.5", ("9.38.0", "9.44.0")),
           "1.32": ("v1.32.7", ("9.45.0", "9.46.6"))}
FACT_CCM = {"1.26": "v1.26.14", "1.27": "v1.27.10", "1.28": "v1.28.11", "1.29": "v1.29.10", "1.30": "v1.30.10",
            "1.31": "v1.31.9", "1.32": "v1.32.8"}
FACT_KSM = {"1.26": ("4.30.0", "5.11.1"), "1.27": ("5.12.0", "5.16.4"), "1.28": ("5.17.0", "5.18.0"),
            "1.29": ("5.18.1", "5.21.0"), "1.30": ("5.22.0", "5.26.0"), "1.31": ("5.27.0", "5.29.0"),
            "1.32": ("5.30.0", "6.1.5")}
FACT_INGRESS = {"1.26": "4.11.8", "1.27": "4.11.8", "1.28": "4.12.8", "1.29": "4.13.9", "1.30": "4.14.5",
                "1.31": "4.15.1", "1.32": "4.15.1"}
FACT_CALICO = {"3.25": ("3.25.2", 23, 28), "3.26": ("3.26.5", 24, 28), "3.27": ("3.27.5", 27, 29),
               "3.28": ("3.28.5", 27, 30), "3.29": ("3.29.7", 29, 32), "3.30": ("3.30.7", 31, 35)}


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.lstrip("v").split("."))


def _within(version: str, bounds: tuple[str, str]) -> bool:
    return _key(bounds[0]) <= _key(version) <= _key(bounds[1])


@pytest.mark.parametrize("minor", MINORS)
def test_every_patch_is_the_reference_last_patch(minor):
    assert catalog.release(minor).patch == FACT_PATCHES[minor]
    if minor in FACT_CONTAINERD:
        assert tuple(catalog.release(minor).containerd_min) == FACT_CONTAINERD[minor]


@pytest.mark.parametrize("minor", sorted(FACT_CA))
def test_every_chart_and_image_is_the_reference_one(minor):
    ca = catalog.addon_pin("cluster-autoscaler", minor)
    assert ca.image_tag == FACT_CA[minor][0] and _within(ca.chart_version, FACT_CA[minor][1])
    ccm = catalog.addon_pin("aws-cloud-controller-manager", minor)
    assert (ccm.chart_version, ccm.image_tag) == ("0.0.8", FACT_CCM[minor])
    assert _within(catalog.addon_pin("kube-state-metrics", minor).chart_version, FACT_KSM[minor])
    ingress = catalog.addon_pin("ingress-nginx", minor)
    assert (ingress.chart_version, ingress.image_tag) == (FACT_INGRESS[minor], "v" + FACT_INGRESS[minor].replace("4.", "1.", 1))
    calico = catalog.addon_pin("calico", minor).chart_version
    line = calico.rsplit(".", 1)[0]
    last, lo, hi = FACT_CALICO[line]
    assert calico == last and lo <= int(minor.split(".")[1]) <= hi, (minor, calico)
    # the newest Calico line tested with this minor: a newer one would be a move for nothing gained
    assert not [v for v, (_, a, b) in FACT_CALICO.items() if a <= int(minor.split(".")[1]) <= b and _key(v) > _key(line)]


def test_the_node_termination_handler_is_the_reference_oci_chart():
    assert catalog.NTH_OCI_CHART == "oci://public.ecr.aws/aws-ec2/helm/aws-node-termination-handler"
    assert catalog.NTH_CHART.chart_version.startswith("0.27.")
