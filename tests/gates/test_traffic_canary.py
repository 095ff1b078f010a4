"""Traffic control (`traffic-set`, kubehop/gates/traffic.py) against a local DAPP state
endpoint and a recording stand-in command; `canary` against a REAL Prometheus."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

from kubehop.gates import traffic
from kubehop.gates import cli
from tests.helpers import loopback_http
from tests.helpers.prom_harness import (
    Exporter,
    Prometheus,
    clean_proxy_env,
    closed_port,
    prometheus_binary,
)

TOKEN = "tok-9f3b2e7a-SECRET-d41c"


class DappServer:
    """The state endpoint: GET shows every cluster, POST sets one (bearer token checked)."""

    def __init__(self) -> None:
        self.state: dict[str, dict] = {
            "west-a": {"state": "available", "share": 100},
            "west-b": {"state": "available", "share": 0},
        }
        self.posts: list[dict] = []
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, Authorization
        self.shape = "list"  # list | clusters-dict | object
        self.post_status = 200
        self.fail_posts_after: int | None = None
        self.apply_posts = True
        owner = self

        class Handler(loopback_http.Handler):
            def _send(self, status: int, body) -> None:
                self.reply(status, body)

            def _authorized(self) -> bool:
                auth = self.headers.get("Authorization")
                owner.requests.append((self.command, self.path, auth))
                if auth != f"Bearer {TOKEN}":
                    self._send(401, {"error": "bad token"})
                    return False
                return True

            def do_GET(self):  # noqa: N802
                if not self._authorized():
                    return
                with_cluster = [{"cluster": c, **v} for c, v in owner.state.items()]
                if owner.shape == "list":
                    body = with_cluster
                elif owner.shape == "clusters-dict":
                    body = {"clusters": owner.state}
                else:  # one object: the cluster in the path
                    name = self.path.rstrip("/").rsplit("/", 1)[-1]
                    body = {"cluster": name, **owner.state[name]}
                self._send(200, body)

            def do_POST(self):  # noqa: N802
                if not self._authorized():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.posts.append(body)
                status = owner.post_status
                if owner.fail_posts_after is not None and len(owner.posts) > owner.fail_posts_after:
                    status = 500
                if status // 100 != 2:
                    self._send(status, {"error": "boom"})
                    return
                if owner.apply_posts:
                    owner.state[body["cluster"]] = {"state": body["state"], "share": body["share"]}
                self._send(200, {"ok": True})

        self.server = loopback_http.start(Handler)
        self.url = f"{loopback_http.url(self.server)}/api/traffic"

    def close(self) -> None:
        loopback_http.stop(self.server)


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    clean_proxy_env(monkeypatch)
    monkeypatch.setenv(traffic.TOKEN_ENV, TOKEN)
    monkeypatch.delenv("KUBEHOP_PROMETHEUS_URL", raising=False)


def gate(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    text = out.out + out.err
    assert TOKEN not in text, "the traffic token leaked into output"
    return rc, out.err


def http_args(dapp: DappServer, *extra: str) -> list[str]:
    return ["--traffic-kind", "http", "--traffic-url", dapp.url, "--traffic-settle-timeout", "1", *extra]


# ------------------------------------------------------------------- http kind


@pytest.mark.parametrize("shape", ["list", "clusters-dict"])
def test_http_sets_state_verifies_and_is_idempotent(dapp, capsys, shape):
    dapp.shape = shape
    rc, err = gate(capsys, "traffic-set", *http_args(dapp), "--cluster", "west-b", "--state", "maintaining", "--share", "0")
    assert rc == 0, err
    assert dapp.posts == [{"cluster": "west-b", "state": "maintaining", "share": 0}]
    assert dapp.state["west-b"] == {"state": "maintaining", "share": 0}
    assert "set west-b state=maintaining share=0% (verified)" in err
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in dapp.requests)
    # GET before, POST, GET to verify
    assert [m for m, _, _ in dapp.requests] == ["GET", "POST", "GET"]
    # again: already so, nothing POSTed
    rc, err = gate(capsys, "traffic-set", *http_args(dapp), "--cluster", "west-b", "--state", "maintaining", "--share", "0")
    assert rc == 0, err
    assert "already west-b state=maintaining share=0%" in err
    assert len(dapp.posts) == 1


def test_http_cluster_placeholder_and_single_object_answer(dapp, capsys):
    dapp.shape = "object"
    url = dapp.url + "/{cluster}"
    rc, err = gate(
        capsys, "traffic-set", "--traffic-kind", "http", "--traffic-url", url,
        "--cluster", "west-b", "--state", "available", "--share", "25",
    )
    assert rc == 0, err
    assert {p for _, p, _ in dapp.requests} == {"/api/traffic/west-b"}
    assert dapp.state["west-b"] == {"state": "available", "share": 25}


def test_http_wrong_or_missing_token_fails_clearly_without_leaking(dapp, capsys, monkeypatch):
    monkeypatch.setenv(traffic.TOKEN_ENV, "wrong-token-value")
    rc, err = gate(capsys, "traffic-set", *http_args(dapp), "--cluster", "west-b", "--state", "maintaining", "--share", "0")
    assert rc == 1
    assert "HTTP 401" in err and "check $KUBEHOP_TRAFFIC_TOKEN)" in err
    assert "wrong-token-value" not in err
    monkeypatch.delenv(traffic.TOKEN_ENV)
    rc, err = gate(capsys, "traffic-set", *http_args(dapp), "--cluster", "west-b", "--state", "maintaining", "--share", "0")
    assert rc == 1
    assert "KUBEHOP_TRAFFIC_TOKEN: it is not set" in err
    assert dapp.posts == []


def test_http_unreachable_non_2xx_and_not_applied_fail(dapp, capsys):
    url = f"http://127.0.0.1:{closed_port()}/api/traffic"
    rc, err = gate(capsys, "traffic-set", "--traffic-kind", "http", "--traffic-url", url,
                   "--cluster", "west-b", "--state", "maintaining", "--share", "0")
    assert rc == 1
    assert f"traffic endpoint {url} unreachable (GET): ConnectionError: Connection refused" in err

    dapp.post_status = 503
    rc, err = gate(capsys, "traffic-set", *http_args(dapp), "--cluster", "west-b", "--state", "maintaining", "--share", "0")
    assert rc == 1
    assert "answered POST with HTTP 503" in err
    assert dapp.state["west-b"]["state"] == "available"

    dapp.post_status = 202
    dapp.apply_posts = False  # accepted but never takes effect
    t0 = time.monotonic()
    rc, err = gate(capsys, "traffic-set", *http_args(dapp), "--cluster", "west-b", "--state", "maintaining", "--share", "0")
    assert rc == 1
    assert time.monotonic() - t0 < 5
    assert "did not take effect" in err and "state='available' share=0" in err


def test_invalid_state_share_combinations_are_refused(dapp, capsys):
    rc, err = gate(capsys, "traffic-set", *http_args(dapp), "--cluster", "west-b", "--state", "maintaining", "--share", "10")
    assert rc == 1 and "maintaining cluster gets no traffic" in err
    assert dapp.requests == []
    for bad in (["--share", "101"], ["--share", "x"], ["--state", "down"]):
        argv = ["traffic-set", *http_args(dapp), "--cluster", "west-b", "--state", "available", "--share", "5"]
        flag = bad[0]
        i = argv.index(flag)
        argv[i + 1] = bad[1]
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
    rc, err = gate(capsys, "traffic-set", "--cluster", "west-b", "--state", "available", "--share", "5")
    assert rc == 1 and "no traffic control configured" in err


def test_yaml_config_and_real_cli_process_keep_the_token_out_of_argv(dapp, tmp_path):
    cfg = tmp_path / "kubehop.yaml"
    cfg.write_text(f"traffic:\n  kind: http\n  url: {dapp.url}\n  settle_timeout: 2\n")
    argv = [sys.executable, "-m", "kubehop", "gate", "traffic-set", "--traffic-config", str(cfg),
            "--cluster", "west-b", "--state", "available", "--share", "40"]
    assert TOKEN not in " ".join(argv)
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=30, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr
    assert dapp.state["west-b"] == {"state": "available", "share": 40}


# ---------------------------------------------------------------- command kind

STANDIN = r'''
import json, os, sys
log, statefile = sys.argv[1], sys.argv[2]
action = sys.argv[3]
with open(log, "a") as fh:
    fh.write(json.dumps({"argv": sys.argv[1:], "token": os.environ.get("KUBEHOP_TRAFFIC_TOKEN")}) + "\n")
state = json.load(open(statefile)) if os.path.exists(statefile) else {}
if action == "set":
    cluster, st, share = sys.argv[4:7]
    if os.environ.get("STANDIN_FAIL"):
        print("dapp api said no", file=sys.stderr)
        sys.exit(3)
    state[cluster] = {"state": st, "share": int(share)}
    json.dump(state, open(statefile, "w"))
    print("done")
elif action == "get":
    print(json.dumps([{"cluster": c, **v} for c, v in state.items()]))
'''


@pytest.fixture
def standin(tmp_path):
    script = tmp_path / "dappctl.py"
    script.write_text(STANDIN)
    log, statefile = tmp_path / "calls.jsonl", tmp_path / "state.json"
    statefile.write_text(json.dumps({"west-b": {"state": "available", "share": 0}}))
    prefix = " ".join(shlex.quote(str(p)) for p in (sys.executable, script, log, statefile))

    def calls() -> list[dict]:
        return [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []

    return {
        "set": f"{prefix} set {{cluster}} {{state}} {{share}}",
        "get": f"{prefix} get --cluster={{cluster}}",
        "calls": calls,
        "state": lambda: json.loads(statefile.read_text()),
        "tmp": tmp_path,
    }


def test_command_kind_runs_without_shell_and_passes_token_only_by_env(standin, capsys):
    evil = "west-b; touch pwned"
    rc, err = gate(capsys, "traffic-set", "--traffic-kind", "command", "--traffic-command", standin["set"],
                   "--cluster", evil, "--state", "maintaining", "--share", "0")
    assert rc == 0, err
    (call,) = standin["calls"]()
    assert call["argv"][2:] == ["set", evil, "maintaining", "0"]  # one word, no shell
    assert not (standin["tmp"] / "pwned").exists() and not Path("pwned").exists()
    assert call["token"] == TOKEN  # the command gets the token from its environment...
    assert all(TOKEN not in a for a in call["argv"])  # ...never on its command line
    assert "not verified: no status_command configured" in err
    assert standin["state"]()[evil] == {"state": "maintaining", "share": 0}


def test_command_kind_with_status_command_is_idempotent_and_verified(standin, capsys):
    args = ["traffic-set", "--traffic-kind", "command", "--traffic-command", standin["set"],
            "--traffic-status-command", standin["get"], "--cluster", "west-b", "--state", "available", "--share", "30"]
    rc, err = gate(capsys, *args)
    assert rc == 0, err
    assert "(verified)" in err
    assert [c["argv"][2] for c in standin["calls"]()] == ["get", "set", "get"]
    assert standin["calls"]()[0]["argv"][3] == "--cluster=west-b"
    rc, err = gate(capsys, *args)
    assert rc == 0 and "already west-b state=available share=30%" in err
    assert [c["argv"][2] for c in standin["calls"]()] == ["get", "set", "get", "get"]


def test_command_kind_failure_is_reported(standin, capsys, monkeypatch):
    monkeypatch.setenv("STANDIN_FAIL", "1")
    rc, err = gate(capsys, "traffic-set", "--traffic-kind", "command", "--traffic-command", standin["set"],
                   "--cluster", "west-b", "--state", "maintaining", "--share", "0")
    assert rc == 1
    assert "traffic command exited 3" in err and "dapp api said no" in err
    rc, err = gate(capsys, "traffic-set", "--traffic-kind", "command", "--traffic-command", "/nonexistent/dappctl {cluster}",
                   "--cluster", "west-b", "--state", "maintaining", "--share", "0")
    assert rc == 1 and "traffic command not found: '/nonexistent/dappctl'" in err


# ---------------------------------------------------------------------- canary


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    binary = prometheus_binary()
    if binary is None:
        pytest.fail("prometheus binary not found (install the Debian package 'prometheus'; CI must install it)")
    exporter = Exporter()
    exporter.set("app_error_ratio", 0.001, service="api")
    exporter.set("app_latency_p99_seconds", 0.2, service="api")
    p = Prometheus(binary, tmp_path_factory.mktemp("prom-canary"), exporter)
    try:
        p.wait_ready()
        yield p
    finally:
        p.stop()
        exporter.close()


def slo_values(prom: Prometheus, error: float, p99: float) -> None:
    prom.exporter.set("app_error_ratio", error, service="api")
    prom.exporter.set("app_latency_p99_seconds", p99, service="api")


CANARY_SLO = [
    "--query", "error_rate=max(app_error_ratio)<=0.01",
    "--query", "p99_latency=max(app_latency_p99_seconds)<=0.5",
]


def canary_args(prom_url: str, dapp: DappServer, *extra: str) -> list[str]:
    return ["canary", "--cluster", "west-b", "--canary-share", "10", "--final-share", "50",
            "--prometheus-url", prom_url, *CANARY_SLO, "--interval", "0.4", *http_args(dapp), *extra]


def test_canary_passes_and_leaves_final_share(prom, dapp, capsys):
    slo_values(prom, 0.001, 0.2)
    prom.sync()
    t0 = time.monotonic()
    rc, err = gate(capsys, *canary_args(prom.url, dapp, "--window", "2"))
    assert rc == 0, err
    assert time.monotonic() - t0 >= 2
    assert [p["share"] for p in dapp.posts] == [10, 50]
    assert {p["state"] for p in dapp.posts} == {"available"}
    assert dapp.state["west-b"] == {"state": "available", "share": 50}
    assert len([l for l in err.splitlines() if l.startswith("[canary] look")]) >= 4
    assert "share now 50%" in err.splitlines()[-1]


def test_canary_breach_routes_traffic_back(prom, dapp, capsys):
    slo_values(prom, 0.001, 0.2)
    prom.sync()
    timer = threading.Timer(0.8, slo_values, args=(prom, 0.001, 1.7))
    timer.start()
    try:
        t0 = time.monotonic()
        rc, err = gate(capsys, *canary_args(prom.url, dapp, "--window", "30"))
        elapsed = time.monotonic() - t0
    finally:
        timer.cancel()
    assert rc == 1
    assert elapsed < 10  # failed at the breach, not after the window
    assert [p["share"] for p in dapp.posts] == [10, 0]  # the server saw share 0: routed back
    assert dapp.state["west-b"] == {"state": "available", "share": 0}
    last = err.splitlines()[-1]
    assert last.startswith("gate canary FAILED: SLO breached at 10% on west-b")
    assert "p99_latency" in last and "=1.7 breaches p99_latency<=0.5" in last
    assert "traffic routed back: west-b share 0%" in last


def test_canary_fails_closed_when_prometheus_unreachable_and_reports_failed_route_back(dapp, capsys):
    url = f"http://127.0.0.1:{closed_port()}"
    rc, err = gate(capsys, *canary_args(url, dapp, "--window", "30"))
    assert rc == 1
    assert [p["share"] for p in dapp.posts] == [10, 0]
    assert "cannot evaluate" in err and "Connection refused" in err and "traffic routed back" in err

    dapp.posts.clear()
    dapp.state["west-b"] = {"state": "available", "share": 0}
    dapp.fail_posts_after = 1  # the shift works, the route-back POST gets a 500
    rc, err = gate(capsys, *canary_args(url, dapp, "--window", "30"))
    assert rc == 1
    assert "route-back FAILED" in err.splitlines()[-1] and "move traffic off west-b by hand" in err.splitlines()[-1]
    assert dapp.state["west-b"]["share"] == 10


def test_canary_argument_rules(dapp):
    base = canary_args("http://127.0.0.1:9", dapp, "--window", "1")
    without_final = [a for i, a in enumerate(base) if a != "--final-share" and base[i - 1] != "--final-share"]
    for argv in (without_final, [("0" if a == "10" else a) for a in base]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
    assert dapp.requests == []
