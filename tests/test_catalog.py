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
