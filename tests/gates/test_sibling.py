"""`sibling-state` against a loopback DAPP state endpoint that answers maintaining,
serving, switching, an error, a reply without the sibling, and nothing at all;
and its place in the maintaining stage (right before users leave this cluster)."""
from __future__ import annotations

import pytest

from kubehop.plan.stages import build, read_stack_file
from tests.helpers.prom_harness import closed_port
from tests.plan_helpers import ancestors, prod_b, step
from tests.gates.test_traffic_canary import _env, gate  # noqa: F401 (_env: the autouse token fixture)

SIBLING = "west-a"


@pytest.fixture
def run_gate(dapp, capsys):
    def run(*extra: str) -> tuple[int, str]:
        return gate(capsys, "sibling-state", "--cluster", SIBLING, "--traffic-kind", "http", "--traffic-url", dapp.url,
                    "--timeout", "0", "--interval", "0", *extra)
    return run


def test_a_serving_sibling_passes_and_nothing_is_written(dapp, run_gate):
    code, err = run_gate("--min-share", "50")
    assert code == 0, err
    assert "west-a is serving (100% of users)" in err
    assert dapp.posts == [] and {m for m, _, _ in dapp.requests} == {"GET"}


@pytest.mark.parametrize(("state", "share", "why"), [
    ("maintaining", 0, "west-a is maintaining"),
    ("available", 10, "west-a is switching: available with 10% of users, below 50%"),
    ("available", 0, "west-a is switching"),
    ("draining", 100, "neither available nor maintaining: unknown"),
    ("available", "lots", "not a number: its state is unknown"),
])
def test_a_sibling_that_is_not_serving_is_refused(dapp, run_gate, state, share, why):
    dapp.state[SIBLING] = {"state": state, "share": share}
    code, err = run_gate("--min-share", "50")
    assert code == 1 and why in err, err


def test_an_unknown_sibling_is_refused(dapp, run_gate, monkeypatch):
    dapp.state.pop(SIBLING)  # the traffic control does not know it
    code, err = run_gate()
    assert code == 1 and "does not report state and share for cluster 'west-a'" in err
    dapp.post_status = 200
    monkeypatch.setenv("KUBEHOP_TRAFFIC_TOKEN", "wrong")
    code, err = run_gate()
    assert code == 1 and "HTTP 401" in err


def test_an_unreachable_traffic_control_is_refused(capsys):
    code, err = gate(capsys, "sibling-state", "--cluster", SIBLING, "--traffic-kind", "http",
                     "--traffic-url", f"http://127.0.0.1:{closed_port()}/api/traffic", "--timeout", "0", "--interval", "0")
    assert code == 1 and "unreachable" in err


def test_a_sibling_that_comes_back_while_the_gate_waits_passes(dapp, capsys):
    import threading
    dapp.state[SIBLING] = {"state": "available", "share": 10}
    timer = threading.Timer(1.5, lambda: dapp.state.update({SIBLING: {"state": "available", "share": 50}}))
    timer.start()
    try:
        code, err = gate(capsys, "sibling-state", "--cluster", SIBLING, "--traffic-kind", "http", "--traffic-url", dapp.url,
                         "--min-share", "50", "--timeout", "20", "--interval", "0.5")
    finally:
        timer.cancel()
    assert code == 0, err
    assert "waiting: west-a is switching" in err


def test_the_maintaining_stage_checks_the_sibling_right_before_users_leave():
    plan = build(read_stack_file(prod_b()), stack="prod-b", to="1.27", policy=None)
    maintaining = next(s for s in plan["stages"] if s["name"] == "maintaining")
    check = step(maintaining, "sibling-state", "aws-uswest2-prod-a")
    move = step(maintaining, "traffic-maintain", "aws-uswest2-prod-b")
    assert check["id"] in ancestors(maintaining, move["id"])
    assert "--min-share 50" in check["inputs"]["create"] and "--cluster aws-uswest2-prod-a" in check["inputs"]["create"]
    assert "KUBEHOP_TRAFFIC_TOKEN" not in check["inputs"]["create"]  # the token comes by the environment, as [secret]
