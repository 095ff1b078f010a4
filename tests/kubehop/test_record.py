"""What the rollout waits record (kubehop/record.py): the pool's own kubelet and AMI always,
the role's AMI only for a pool that rolls in the window (a pool rolled after serving lags)."""
from __future__ import annotations

from kubehop import record
from kubehop.hops import Deployed

PREVIOUS = {"controlPlaneVersion": "1.29.15", "workerVersion": "1.29.15", "amis": {"spark": "ami-old"}, "pools": {}}


def wait(ami: str, kubelet: str) -> str:
    return record.line("rollout", ["--asg", "g", "--image-id", ami, "--kubelet-version", kubelet]) + "\n"


def test_a_window_rollout_moves_the_role_and_the_pool():
    state = record.recorded_state(PREVIOUS, {"rollout:spark:spark": wait("ami-new", "v1.29.15")})
    assert state["amis"]["spark"] == "ami-new"
    assert state["pools"] == {"spark": {"version": "1.29.15", "ami": "ami-new"}}


def test_a_pool_rolled_after_serving_moves_only_itself():
    state = record.recorded_state(PREVIOUS, {"deferred:spark:batch": wait("ami-kept", "v1.26.15")})
    assert state["amis"]["spark"] == "ami-old"
    assert state["pools"] == {"batch": {"version": "1.26.15", "ami": "ami-kept"}}
    deployed = Deployed.from_output(state)
    assert str(deployed.pool_version("batch")) == "1.26.15"
    assert str(deployed.pool_version("other")) == "1.29.15"  # no record: the workers' version


def test_a_wait_that_did_not_run_records_nothing():
    state = record.recorded_state({**PREVIOUS, "pools": {"batch": {"version": "1.26.15", "ami": "a"}}},
                                  {"deferred:spark:batch": None})
    assert state["pools"] == {"batch": {"version": "1.26.15", "ami": "a"}}
