"""Hop rules, property-based: one minor at a time, never down, skew kept."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubehop import catalog, hops
from kubehop.catalog import Version

MINORS = [catalog.release(m).version for m in catalog.known_minors()]


def kubelet_skew_supported(apiserver: Version, kubelet: Version) -> bool:
    """The oracle, written from the Kubernetes version skew policy (kubernetes/website
    content/en/releases/version-skew-policy.md), not from kubehop's catalog: kubelet must not be
    newer than kube-apiserver; it may be up to three minors older, but only from the 1.28 policy on
    (KEP-3935, "n-3 node skew", released in 1.28) and only for kubelet >= 1.25; otherwise two."""
    if (kubelet.major, kubelet.minor) > (apiserver.major, apiserver.minor):
        return False
    behind = apiserver.minor - kubelet.minor
    return behind <= (3 if apiserver.minor >= 28 and kubelet.minor >= 25 else 2)


@pytest.mark.parametrize("apiserver", MINORS, ids=str)
def test_skew_rule_matches_the_policy_for_every_pair(apiserver):
    for kubelet in MINORS:
        assert hops.skew_ok(apiserver, kubelet) == kubelet_skew_supported(apiserver, kubelet), (apiserver, kubelet)


def test_the_oracle_itself_on_the_policy_examples():
    v = Version.parse
    # the policy's own examples: apiserver 1.28 supports kubelets 1.28 ... 1.25; a 1.27 apiserver 1.27 ... 1.25
    assert [kubelet_skew_supported(v("1.28.0"), v(f"1.{m}.0")) for m in (29, 28, 25, 24)] == [False, True, True, False]
    assert [kubelet_skew_supported(v("1.27.0"), v(f"1.{m}.0")) for m in (27, 25, 24)] == [True, True, False]


def deployed(cp: Version, workers: Version | None = None) -> hops.Deployed:
    return hops.Deployed(cp, workers or cp)


@st.composite
def journeys(draw):
    start = draw(st.integers(0, len(MINORS) - 1))
    end = draw(st.integers(start, len(MINORS) - 1))
    lag = draw(st.integers(0, 2))
    cp = MINORS[start]
    workers = MINORS[max(0, start - min(lag, catalog.max_kubelet_skew(cp)))]
    policy = draw(st.sampled_from(hops.POLICIES))
    production = draw(st.booleans())
    return deployed(cp, workers), MINORS[end], policy, production


@settings(max_examples=400, deadline=None)
@given(journeys())
def test_every_journey_keeps_the_rules(case):
    start, goal, policy, production = case
    stages = hops.journey(start, goal, policy, production=production, prepare_images=True)
    versions = [s.hop for s in stages if s.hop and s.name not in ("prepare",)]
    previous = start
    for i, hop in enumerate(versions):
        assert 0 <= hop.control_plane.minors_after(previous.control_plane) <= 1
        # pools roll after the control plane: the kubelets of before run under the new apiserver first.
        # Only a start already at the skew limit cannot keep that on its first hop (noted in the README).
        if i or kubelet_skew_supported(hop.control_plane, start.workers):
            assert kubelet_skew_supported(hop.control_plane, previous.workers), (hop.control_plane, previous.workers)
        assert kubelet_skew_supported(hop.control_plane, hop.workers), (hop.control_plane, hop.workers)
        assert hop.workers >= previous.workers
        previous = hops.Deployed(hop.control_plane, hop.workers)
    if versions:
        assert versions[-1].control_plane == goal
        assert versions[-1].workers == goal
    rolls = [h for h in versions if h.rolls_workers]
    if policy == "efficient" and goal != start.control_plane:
        # a roll before the last hop is forced only when the kept kubelets would leave the skew
        # policy under this hop's apiserver or the next one's
        nexts = [h.control_plane for h in versions[1:]] + [None]
        forced = sum(1 for h, nxt in zip(versions, nexts, strict=True)
                     if not kubelet_skew_supported(h.control_plane, h.deployed.workers)
                     or (nxt is not None and not kubelet_skew_supported(nxt, h.deployed.workers)))
        assert len(rolls) <= 1 + forced
    if policy == "each-hop":
        assert all(h.workers == h.control_plane for h in versions)
    names = [s.name for s in stages]
    if production and goal != start.control_plane:
        assert names[-1] == "serving" and "maintaining" in names


def test_efficient_rolls_once_for_1_26_to_1_29():
    stages = hops.journey(deployed(Version.parse("1.26.15")), Version.parse("1.29.15"), "efficient",
                          production=False, prepare_images=True)
    rolls = [s.name for s in stages if s.hop and s.hop.rolls_workers]
    assert rolls == ["1.29.15"]
    assert stages[0].name == "prepare" and str(stages[0].hop.image) == "1.29.15"


def test_efficient_moves_workers_when_skew_would_break():
    # 1.25 workers under a 1.27 apiserver: 2 behind is the limit before 1.28
    start = deployed(Version.parse("1.26.15"), Version.parse("1.24.17"))
    hop = hops.plan_hop(start, Version.parse("1.27.16"), Version.parse("1.29.15"), "efficient")
    assert hop.workers == Version.parse("1.27.16")


@pytest.mark.parametrize("requested, text", [("1.28.15", "skips minors"), ("1.25.16", "never downgrades")])
def test_bad_hops_name_the_key(requested, text):
    with pytest.raises(hops.HopError) as info:
        hops.plan_hop(deployed(Version.parse("1.26.15")), Version.parse(requested), Version.parse("1.29.15"), "each-hop")
    assert info.value.key == "kubehop:kubernetesVersion" and text in str(info.value)


def test_patch_hop_is_allowed():
    hop = hops.plan_hop(deployed(Version.parse("1.29.14")), Version.parse("1.29.15"), Version.parse("1.29.15"), "each-hop")
    assert hop.moves_control_plane and hop.workers == Version.parse("1.29.15")


def test_same_version_is_a_no_op_hop():
    d = deployed(Version.parse("1.27.16"))
    hop = hops.plan_hop(d, Version.parse("1.27.16"), Version.parse("1.27.16"), "each-hop")
    assert not hop.moves_control_plane and not hop.rolls_workers


@given(st.sampled_from(MINORS), st.sampled_from(MINORS))
def test_skew_policy(api, kubelet):
    behind = api.minors_after(kubelet)
    expected = 0 <= behind <= (3 if api >= Version(1, 28) else 2)
    assert hops.skew_ok(api, kubelet) == expected


def test_images_are_built_only_for_a_version_the_pools_move_to():
    v26, v29 = Version.parse("1.26.15"), Version.parse("1.29.15")
    adopt = hops.plan_hop(deployed(v26), v26, v26, "efficient")
    assert not adopt.builds_images
    prepare = hops.plan_hop(deployed(v26), v26, v29, "efficient")
    assert prepare.builds_images and not prepare.rolls_to_built_images and prepare.image == v29
    done = hops.plan_hop(hops.Deployed(v29, v29, v29), v29, v29, "efficient")
    assert done.builds_images and done.rolls_to_built_images  # kept: no rebuild, no delete


def test_mirror_maker_state_across_runs():
    d = deployed(Version.parse("1.27.16"))
    assert hops.mirror_maker_after(d, "maintaining", True) == "stopped"
    assert hops.mirror_maker_after(d, "serving", True) == "running"
    stopped = hops.Deployed(d.control_plane, d.workers, mirror_maker="stopped")
    assert hops.mirror_maker_after(stopped, "maintaining", False) == "stopped"
