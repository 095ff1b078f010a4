"""kubehop/kubeadm_upgrade.py, the one home of per-minor kubeadm behaviour, and how the
plan follows it: which master's step proves CoreDNS and kube-proxy, per minor."""
from __future__ import annotations

import shlex

import pytest

from kubehop.kubeadm_upgrade import FIRST_MINOR, LAST_MINOR, addons_upgraded_by, kubeadm_minor
from kubehop.plan.stages import build, read_stack_file
from tests.plan_helpers import five_masters, prod_b


@pytest.mark.parametrize("minor", range(FIRST_MINOR, LAST_MINOR + 1))
def test_each_minor_is_modelled(minor):
    model = kubeadm_minor(f"1.{minor}")
    assert model.addons_wait_for_all_masters is (minor >= 28)  # PR #116570/#117660, CHANGELOG-1.28
    assert model.has_addon_order_gate is (minor in (28, 29, 30))  # UpgradeAddonsBeforeControlPlane, removed in 1.31
    assert model.coredns.startswith("v1.")
    # Exactly one master's step upgrades the addons, whatever the count.
    for masters in (1, 3, 5):
        assert sum(addons_upgraded_by(minor, masters, i) for i in range(masters)) == 1


def test_outside_the_modelled_minors_is_refused():
    for minor in ("1.23", "1.33"):
        with pytest.raises(ValueError, match="outside the modelled"):
            kubeadm_minor(minor)


def step_env(step: dict) -> dict[str, str]:
    words = shlex.split(step["inputs"]["create"])
    return dict(w.split("=", 1) for w in words[2:-2])


@pytest.mark.parametrize(("data", "masters"), [(prod_b, ["master0", "master1", "master2"]),
                                               (five_masters, [f"cp-{i}" for i in range(5)])])
def test_the_plan_checks_the_addons_where_kubeadm_upgrades_them(data, masters):
    plan = build(read_stack_file(data()), stack="prod-b", to="1.29", policy=None)
    stages = {s["name"]: s for s in plan["stages"]}
    for name, at in (("1.27.16", masters[0]), ("1.28.15", masters[-1]), ("1.29.15", masters[-1])):
        upgrades = [s for s in stages[name]["steps"] if s["action"] in ("kubeadm-apply", "kubeadm-node")]
        assert [s["target"] for s in upgrades] == masters
        assert {s["target"]: step_env(s)["KUBEHOP_ADDONS"] for s in upgrades} == \
            {m: "1" if m == at else "0" for m in masters}, name
