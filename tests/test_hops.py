"""Hop rules, property-based: one minor at a time, never down, skew kept."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubehop import catalog, hops
from kubehop.catalog import Version

MINORS = [catalog.release(m).version for m in catalog.known_minors()]


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


@settings(max_examples=200, deadline=None)
@given(journeys())
def test_every_journey_keeps_the_rules(case):
    start, goal, policy, production = case
    stages = hops.journey(start, goal, policy, production=production, prepare_images=True)
    versions = [s.hop for s in stages if s.hop and s.name not in ("prepare",)]
    previous = start
    for hop in versions:
        assert 0 <= hop.control_plane.minors_after(previous.control_plane) <= 1
        assert hops.skew_ok(hop.control_plane, hop.workers)
        assert hop.workers >= previous.workers
        previous = hops.Deployed(hop.control_plane, hop.workers)
    if versions:
        assert versions[-1].control_plane == goal
        assert versions[-1].workers == goal
    rolls = [h for h in versions if h.rolls_workers]
    if policy == "efficient" and goal != start.control_plane:
        assert len(rolls) <= 1 + sum(1 for h in versions if not hops.skew_ok(h.control_plane, h.deployed.workers))
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
