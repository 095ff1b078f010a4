"""The join token renewed between runs: join_token_timer.sh installs join_token.sh and a systemd
timer on the first master (run with the stand-ins of tests/scripts/test_control_plane_scripts.py, the unit
files checked by the real `systemd-analyze verify`), the installed service runs the same logic for
real, and the margin check after the rollouts fails when the published token is running out."""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from components.steps import script as sent_text
from kubehop import config
from kubehop.plan.stages import build, read_stack_file
from tests.plan_helpers import ancestors, prod_b, step, steps_by
from tests.scripts.test_control_plane_scripts import PARAM, Rig, make_ca, skipped, token_env, tokens

UNITS = "etc/systemd/system"
TIMER, SERVICE = "kubehop-join-token.timer", "kubehop-join-token.service"


def timer_env(ttl: str = "24h") -> dict[str, str]:
    return token_env(KUBEHOP_TOKEN_TTL=ttl)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_installs_the_timer_then_skips_and_the_units_are_valid_systemd(rig: Rig):
    first = rig.run("join_token_timer.sh", **timer_env())
    assert first.rc == 0, first.err
    script = rig.root / "usr/local/lib/kubehop/join-token.sh"
    # the same text the join-token step runs, lib.sh included
    assert script.read_text() == sent_text("control_plane/join_token.sh") and mode(script) == 0o700
    env_file = rig.root / "etc/kubehop/join-token.env"
    assert env_file.read_text().splitlines() == [
        "KUBEHOP_NODE=master0", "KUBEHOP_CLUSTER=prod-b", "KUBEHOP_REGION=eu-west-1", "KUBEHOP_TOKEN_TTL=24h"]
    assert mode(env_file) == 0o600
    timer = (rig.root / UNITS / TIMER).read_text()
    assert "OnActiveSec=28800s" in timer and "OnUnitActiveSec=28800s" in timer  # a third of 24h
    service = (rig.root / UNITS / SERVICE).read_text()
    assert "ExecStart=/bin/bash /usr/local/lib/kubehop/join-token.sh" in service
    assert "EnvironmentFile=/etc/kubehop/join-token.env" in service and "Type=oneshot" in service
    units = rig.state()["units"]
    assert units[TIMER]["enabled"] and units[TIMER]["active"] and units[TIMER]["running"] == timer
    assert first.mutating == ["systemctl daemon-reload", f"systemctl enable {TIMER}", f"systemctl restart {TIMER}"]

    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is not installed (Debian package 'systemd'); CI installs it"
    proc = subprocess.run([analyze, "verify", "--man=no", str(rig.root / UNITS / TIMER), str(rig.root / UNITS / SERVICE)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout + proc.stderr == "", proc.stdout + proc.stderr

    second = rig.run("join_token_timer.sh", **timer_env())
    assert skipped(second, "join-token-timer"), second.out + second.err
    assert second.mutating == []


def test_a_new_ttl_reloads_systemd_before_restarting_the_timer(rig: Rig):
    assert rig.run("join_token_timer.sh", **timer_env()).rc == 0
    result = rig.run("join_token_timer.sh", **timer_env("6h"))
    assert result.rc == 0, result.err
    timer = (rig.root / UNITS / TIMER).read_text()
    assert "OnUnitActiveSec=7200s" in timer
    # systemd keeps a changed unit's old definition until daemon-reload (the stand-in too)
    assert rig.state()["units"][TIMER]["running"] == timer
    assert result.mutating == ["systemctl daemon-reload", f"systemctl enable {TIMER}", f"systemctl restart {TIMER}"]


def test_a_stopped_timer_is_started_again(rig: Rig):
    assert rig.run("join_token_timer.sh", **timer_env()).rc == 0
    state = rig.state()
    state["units"][TIMER]["active"] = False
    rig.write_state(state)
    result = rig.run("join_token_timer.sh", **timer_env())
    assert result.rc == 0 and rig.state()["units"][TIMER]["active"], result.err
    assert result.mutating == [f"systemctl enable {TIMER}", f"systemctl restart {TIMER}"]


@pytest.mark.parametrize(("extra", "message"), [
    ({"KUBEHOP_TOKEN_TTL": "30m"}, "KUBEHOP_TOKEN_TTL must be a duration of at least 1h"),
    ({"KUBEHOP_CLUSTER": "prod b\nExecStart=/bin/sh"}, "KUBEHOP_CLUSTER must be"),
])
def test_bad_values_never_reach_the_units(rig: Rig, extra: dict, message: str):
    result = rig.run("join_token_timer.sh", **{**timer_env(), **extra})
    assert result.rc == 2 and message in result.err and result.calls == []
    assert not (rig.root / UNITS).exists()


def installed_service_run(rig: Rig) -> subprocess.CompletedProcess:
    """What systemd does when the timer elapses: ExecStart with the EnvironmentFile's variables."""
    env = dict(line.split("=", 1) for line in (rig.root / "etc/kubehop/join-token.env").read_text().splitlines())
    service = (rig.root / UNITS / SERVICE).read_text()
    (exec_start,) = [line.split("=", 1)[1] for line in service.splitlines() if line.startswith("ExecStart=")]
    shell, path = exec_start.split()
    return subprocess.run([str(rig.realbin / "bash"), str(rig.root / path.lstrip("/"))], capture_output=True, text=True,
                          env={**rig.env(), **env}, cwd=rig.tmp, timeout=60)


def test_the_installed_service_renews_a_token_with_less_than_half_left(rig: Rig):
    make_ca(rig)
    assert rig.run("join_token.sh", **timer_env()).rc == 0
    assert rig.run("join_token_timer.sh", **timer_env()).rc == 0
    (old,) = tokens(rig)
    kept = installed_service_run(rig)
    assert kept.returncode == 0 and "is kept" not in kept.stdout and "already done" in kept.stdout, kept.stderr
    rig.update(tokens=[{**old, "expires": time.time() + 3 * 3600}])  # 3h of 24h left
    renewed = installed_service_run(rig)
    assert renewed.returncode == 0, renewed.stderr
    new = tokens(rig)[-1]
    assert new["token"] != old["token"] and rig.state()["ssm"][f"{PARAM}/join-token"]["Value"] == new["token"]
    assert new["token"] not in renewed.stdout + renewed.stderr


@pytest.mark.parametrize(("left", "ok", "message"), [
    (20 * 3600, True, "at least the margin of 3600s"),
    (1800, False, "less than the margin of 3600s"),
    (-60, False, "is expired or gone from the cluster"),
])
def test_the_margin_check_passes_only_with_the_margin_left(rig: Rig, left: int, ok: bool, message: str):
    make_ca(rig)
    assert rig.run("join_token.sh", **timer_env()).rc == 0
    (made,) = tokens(rig)
    rig.update(tokens=[{**made, "expires": time.time() + left}])
    result = rig.run("join_token.sh", **timer_env(), KUBEHOP_TOKEN_MARGIN="60m")
    assert (result.rc == 0) is ok and message in result.out + result.err, result.out + result.err
    assert result.mutating == [] and tokens(rig) == [{**made, "expires": tokens(rig)[0]["expires"]}]
    assert made["token"] not in result.out + result.err


def test_the_margin_check_fails_without_a_published_token(rig: Rig):
    make_ca(rig)
    result = rig.run("join_token.sh", **timer_env(), KUBEHOP_TOKEN_MARGIN="60m")
    assert result.rc == 1 and f"{PARAM}/join-token does not exist" in result.err and result.mutating == []


@pytest.fixture(scope="module")
def plan() -> dict:
    whole = build(read_stack_file(prod_b()), stack="prod-b", to="1.29", policy=None)
    # no recorded state: the adoption run comes first
    return {"adopt": whole["stages"][0], "stages": whole["stages"][1:]}


def test_the_plan_installs_the_timer_and_checks_the_margin_after_every_rollout(plan):
    adopt = plan["adopt"]
    timer = step(adopt, "join-token-timer", "master0")
    assert step(adopt, "join-token", "master0")["id"] in ancestors(adopt, timer["id"])
    assert "KUBEHOP_TOKEN_TTL=24h" in timer["inputs"]["create"]
    (rolled,) = [s for s in plan["stages"] if steps_by(s, "rollout-wait")][:1]
    margin = step(rolled, "join-token-margin", "master0")
    assert "KUBEHOP_TOKEN_MARGIN=60m" in margin["inputs"]["create"]
    before = ancestors(rolled, margin["id"])
    assert {s["id"] for s in steps_by(rolled, "rollout-wait")} <= before
    # and in every version stage (a token that runs out between runs shows at the next stage's check)
    for s in plan["stages"]:
        if s["name"][0].isdigit():
            assert step(s, "join-token-margin", "master0")


def test_a_margin_over_a_sixth_of_the_ttl_is_refused():
    raw = read_stack_file(prod_b())
    cp = dict(config.load(raw.raw, set(raw.secret_keys)).control_plane.model_dump(by_alias=True))
    assert cp["joinTokenMarginMinutes"] == 60
    data = prod_b()
    data["config"]["kubehop:controlPlane"]["joinTokenMarginMinutes"] = 241  # 24h / 6 = 240 min
    bad = read_stack_file(data)
    with pytest.raises(config.ConfigErrors) as err:
        config.load(bad.raw, set(bad.secret_keys))
    text = str(err.value)
    assert "kubehop:controlPlane" in text and "joinTokenMarginMinutes 241" in text and "at most 240" in text
