"""`http-check` against local http.servers on 127.0.0.1 answering configurable statuses."""
from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

from kubehop.gates import cli
from kubehop.gates.http_check import parse_url_check
from tests.helpers import loopback_http
from tests.helpers.prom_harness import clean_proxy_env, closed_port


class StatusServer:
    """Answers each path with the status in `statuses` (default 200); counts hits."""

    def __init__(self) -> None:
        self.statuses: dict[str, int] = {}
        self.hits: list[str] = []
        owner = self

        class Handler(loopback_http.Handler):
            def do_GET(self):  # noqa: N802
                owner.hits.append(self.path)
                status = owner.statuses.get(self.path.split("?")[0], 200)
                self.reply(status, b"ok", headers={"Location": "/login"} if 300 <= status < 400 else None)

        self.server = loopback_http.start(Handler)
        self.base = loopback_http.url(self.server)

    def close(self) -> None:
        loopback_http.stop(self.server)


@pytest.fixture
def srv(monkeypatch):
    clean_proxy_env(monkeypatch)
    s = StatusServer()
    yield s
    s.close()


def gate(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = cli.main(["http-check", *argv])
    return rc, capsys.readouterr().err


def test_passes_when_every_url_answers_an_accepted_status(srv, capsys):
    srv.statuses.update({"/api/health": 200, "/": 302, "/ready": 204})
    rc, err = gate(
        capsys,
        "--url", f"grafana={srv.base}/api/health=200",
        "--url", f"jumpserver={srv.base}/=200,302",
        "--url", f"loki={srv.base}/ready?probe=a=b=200,204",
        "--timeout", "2", "--interval", "0.2",
    )
    assert rc == 0, err
    assert "all 3 URLs answered as expected: grafana=200, jumpserver=302, loki=204" in err
    # the redirect was not followed, and the URL kept its '=' query string
    assert srv.hits.count("/login") == 0
    assert "/ready?probe=a=b" in srv.hits


def test_fails_on_wrong_status_naming_url_and_answer(srv, capsys):
    srv.statuses.update({"/api/health": 503})
    t0 = time.monotonic()
    rc, err = gate(
        capsys,
        "--url", f"grafana={srv.base}/api/health=200",
        "--url", f"jumpserver={srv.base}/=200",
        "--timeout", "1", "--interval", "0.3",
    )
    assert rc == 1
    assert time.monotonic() - t0 < 4
    last = err.splitlines()[-1]
    assert last.startswith("gate http-check FAILED")
    assert f"grafana ({srv.base}/api/health) answered 503, want 200" in last
    assert "jumpserver" not in last  # the healthy one is not listed as failing
    assert "1 of 2 failing" in last
    assert len([l for l in err.splitlines() if l.startswith("[http-check] attempt")]) >= 3


def test_passes_once_the_url_recovers(srv, capsys):
    srv.statuses["/api/health"] = 502
    timer = threading.Timer(0.8, srv.statuses.__setitem__, args=("/api/health", 200))
    timer.start()
    try:
        rc, err = gate(capsys, "--url", f"grafana={srv.base}/api/health=200", "--timeout", "5", "--interval", "0.2")
    finally:
        timer.cancel()
    assert rc == 0, err
    assert "answered 502" in err.splitlines()[0]


def test_follow_redirects_checks_final_status(srv, capsys):
    srv.statuses.update({"/": 302, "/login": 200})
    rc, err = gate(capsys, "--url", f"j={srv.base}/=200", "--timeout", "0", "--interval", "0.1")
    assert rc == 1 and "answered 302" in err
    rc, err = gate(capsys, "--url", f"j={srv.base}/=200", "--follow-redirects", "--timeout", "0")
    assert rc == 0, err


def test_fails_closed_on_closed_port(capsys, monkeypatch):
    clean_proxy_env(monkeypatch)
    url = f"http://127.0.0.1:{closed_port()}/api/health"
    rc, err = gate(capsys, "--url", f"grafana={url}=200", "--timeout", "0.5", "--interval", "0.2", "--request-timeout", "1")
    assert rc == 1
    assert f"grafana ({url}) unreachable: ConnectionError: Connection refused" in err.splitlines()[-1]


def test_fails_closed_on_timeout(capsys, monkeypatch):
    """A server that accepts but never answers: the per-request timeout bites."""
    clean_proxy_env(monkeypatch)
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        t0 = time.monotonic()
        rc, err = gate(capsys, "--url", f"slow={url}=200", "--timeout", "0", "--request-timeout", "0.5")
        assert rc == 1
        assert time.monotonic() - t0 < 3
        assert "slow" in err and "unreachable" in err and "Timeout" in err
    finally:
        sock.close()


def test_cli_exit_codes_via_subprocess(srv):
    srv.statuses["/bad"] = 500
    cmd = [sys.executable, "-m", "kubehop", "gate", "http-check", "--timeout", "0", "--interval", "0.1"]
    ok = subprocess.run(cmd + ["--url", f"a={srv.base}/ok=200"], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(cmd + ["--url", f"a={srv.base}/bad=200"], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and "answered 500" in bad.stderr
    usage = subprocess.run(cmd + ["--url", "a=nourl"], cwd=REPO, capture_output=True, text=True, timeout=30)
    assert usage.returncode == 2


def test_url_argument_parsing():
    c = parse_url_check("grafana=https://grafana.example/api/health?x=1=200,204")
    assert (c.name, c.url, c.statuses) == ("grafana", "https://grafana.example/api/health?x=1", frozenset({200, 204}))
    for bad in ("grafana", "g=https://x", "g=https://x=abc", "g=ftp://x=200", "=https://x=200", "g=https://x=99"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_url_check(bad)
    with pytest.raises(SystemExit) as exc:
        cli.main(["http-check", "--url", "g=https://x=20O"])
    assert exc.value.code == 2
    # duplicate names are refused before any request (GateError -> exit 1)
    assert cli.main(["http-check", "--url", "g=http://127.0.0.1:9/=200", "--url", "g=http://127.0.0.1:9/=200"]) == 1
