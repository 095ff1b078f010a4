"""`kafka-lag`, `mirror-lag` and `slo` against a REAL Prometheus on 127.0.0.1
scraping an in-process exporter whose series the tests change."""
from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

from kubehop.gates import cli
from kubehop.gates.prometheus import Sample, lag_verdict, parse_objective
from tests.helpers import loopback_http
from tests.helpers.prom_harness import (
    Exporter,
    Prometheus,
    clean_proxy_env,
    closed_port,
    prometheus_binary,
)

LAG = "kafka_consumergroup_lag"
GROUPS = {  # group -> [(topic, partition)]
    "orders": [("cluster_a.orders", "0"), ("cluster_a.orders", "1")],
    "backfill": [("backfill.events", "0")],
    "velocity": [("velocity.scores", "0")],
    "velocity-al": [("velocity-al.scores", "0")],
}
MIRROR_GROUP = "mirrormaker2-cluster_a"
MIRROR_TOPICS = ["cluster_a.orders", "cluster_a.payments"]


def baseline(exporter: Exporter, **overrides: float) -> None:
    """Every partition lag 10, mirror lag 5, healthy SLO series; then overrides
    (`group__topic__partition=value`, `mirror__topic=value`, `error_ratio=`, `p99=`)."""
    entries = []
    for group, parts in GROUPS.items():
        for topic, part in parts:
            key = f"{group}__{topic}__{part}"
            entries.append((LAG, {"consumergroup": group, "topic": topic, "partition": part}, overrides.pop(key, 10)))
    for topic in MIRROR_TOPICS:
        entries.append(
            (LAG, {"consumergroup": MIRROR_GROUP, "topic": topic, "partition": "0"}, overrides.pop(f"mirror__{topic}", 5))
        )
    entries.append(("app_error_ratio", {"service": "api"}, overrides.pop("error_ratio", 0.002)))
    entries.append(("app_latency_p99_seconds", {"service": "api"}, overrides.pop("p99", 0.2)))
    entries.append(("app_success_ratio", {"service": "api"}, overrides.pop("success", 0.999)))
    assert not overrides, f"unknown overrides {overrides}"
    exporter.replace(entries)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    binary = prometheus_binary()
    if binary is None:
        pytest.fail("prometheus binary not found (install the Debian package 'prometheus'; CI must install it)")
    exporter = Exporter()
    baseline(exporter)
    prom = Prometheus(binary, tmp_path_factory.mktemp("prom"), exporter)
    try:
        prom.wait_ready()
        yield prom
    finally:
        prom.stop()
        exporter.close()


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    clean_proxy_env(monkeypatch)
    monkeypatch.delenv("KUBEHOP_PROMETHEUS_URL", raising=False)
    monkeypatch.delenv("KUBEHOP_PROMETHEUS_TOKEN", raising=False)


def gate(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = cli.main(list(argv))
    return rc, capsys.readouterr().err


def set_and_sync(stack: Prometheus, **overrides: float) -> None:
    baseline(stack.exporter, **overrides)
    stack.sync()


# ----------------------------------------------------------------- kafka-lag


def test_kafka_lag_passes_when_every_group_is_under_1000(stack, capsys):
    set_and_sync(stack, **{"orders__cluster_a.orders__0": 600, "orders__cluster_a.orders__1": 300})
    rc, err = gate(capsys, "kafka-lag", "--prometheus-url", stack.url, "--timeout", "5", "--interval", "0.5")
    assert rc == 0, err
    # 4 groups + the MirrorMaker group; partitions summed per group by the default query
    assert "all 5 consumer groups under 1000" in err
    assert "worst: orders=900" in err


def test_kafka_lag_fails_when_lag_stays_high_naming_worst_groups(stack, capsys):
    set_and_sync(
        stack,
        **{"backfill__backfill.events__0": 5000, "velocity__velocity.scores__0": 1000, "orders__cluster_a.orders__0": 20},
    )
    t0 = time.monotonic()
    rc, err = gate(capsys, "kafka-lag", "--prometheus-url", stack.url, "--timeout", "1.5", "--interval", "0.5")
    assert rc == 1
    assert time.monotonic() - t0 < 6
    last = err.strip().splitlines()[-1]
    assert last.startswith("gate kafka-lag FAILED")
    # lag == threshold is not "< 1000": velocity counts as over
    assert "2 of 5 consumer groups at or over 1000" in last
    assert "worst: backfill=5000, velocity=1000, orders=30" in last
    assert err.count("attempt") >= 3  # kept polling until the timeout


def test_kafka_lag_passes_after_lag_drops_mid_poll(stack, capsys):
    set_and_sync(stack, **{"velocity-al__velocity-al.scores__0": 250000})
    timer = threading.Timer(1.5, baseline, args=(stack.exporter,))
    timer.start()
    try:
        t0 = time.monotonic()
        rc, err = gate(capsys, "kafka-lag", "--prometheus-url", stack.url, "--timeout", "15", "--interval", "0.5")
        elapsed = time.monotonic() - t0
    finally:
        timer.cancel()
    assert rc == 0, err
    assert elapsed >= 1.4
    lines = [l for l in err.splitlines() if l.startswith("[kafka-lag]")]
    assert "waiting" in lines[0] and "velocity-al=250000" in lines[0]
    assert ": ok: " in lines[-1]


def test_kafka_lag_key_groups_missing_group_fails_closed(stack, capsys):
    set_and_sync(stack, **{"backfill__backfill.events__0": 9000})
    # non-key group 'backfill' is high, key groups are fine: passes
    rc, err = gate(
        capsys, "kafka-lag", "--prometheus-url", stack.url, "--groups", "orders,velocity", "--timeout", "3", "--interval", "0.5"
    )
    assert rc == 0, err
    assert "all 2 consumer groups under 1000" in err
    # a key group Prometheus does not report fails, even though the others are fine
    rc, err = gate(
        capsys,
        "kafka-lag",
        "--prometheus-url",
        stack.url,
        "--groups",
        "orders,ghost-group",
        "--timeout",
        "1",
        "--interval",
        "0.5",
    )
    assert rc == 1
    assert "missing key consumer group(s): ghost-group" in err.splitlines()[-1]


def test_kafka_lag_fails_closed_on_closed_port(capsys):
    url = f"http://127.0.0.1:{closed_port()}"
    rc, err = gate(capsys, "kafka-lag", "--prometheus-url", url, "--timeout", "0.5", "--interval", "0.2")
    assert rc == 1
    assert "unreachable" in err and "Connection refused" in err


def test_gates_fail_closed_when_prometheus_is_stopped(stack, capsys, tmp_path):
    """A second Prometheus: pass while it runs, fail once it is stopped.
    (Its queries need no scraped data, so it need not wait for a scrape.)"""
    other = Prometheus(prometheus_binary(), tmp_path / "prom2", stack.exporter)
    try:
        other.wait_up()
        lag = 'label_replace(vector(7), "consumergroup", "orders", "", "")'
        args = ["--prometheus-url", other.url, "--query", lag, "--timeout", "1", "--interval", "0.3"]
        rc, err = gate(capsys, "kafka-lag", *args)
        assert rc == 0, err
        slo = ["slo", "--prometheus-url", other.url, "--query", "e=vector(0.001)<=0.01", "--window", "0"]
        rc, err = gate(capsys, *slo)
        assert rc == 0, err
        other.stop()
        rc, err = gate(capsys, "kafka-lag", *args)
        assert rc == 1
        assert "Connection refused" in err.splitlines()[-1]
        rc, err = gate(capsys, *slo)
        assert rc == 1
        assert "cannot evaluate" in err and "Connection refused" in err
    finally:
        other.stop()


def test_kafka_lag_fails_closed_on_bad_query_empty_result_and_nan(stack, capsys):
    base = ["--prometheus-url", stack.url, "--timeout", "0.5", "--interval", "0.5"]
    rc, err = gate(capsys, "kafka-lag", *base, "--query", "sum((")
    assert rc == 1
    assert "HTTP 400" in err and "bad_data" in err
    rc, err = gate(capsys, "kafka-lag", *base, "--query", "sum by (consumergroup) (no_such_metric)")
    assert rc == 1
    assert "no series" in err
    rc, err = gate(capsys, "kafka-lag", *base, "--query", 'label_replace(vector(0)/vector(0), "consumergroup", "orders", "", "")')
    assert rc == 1
    assert "NaN lag for: orders" in err


class _FakeProm(loopback_http.Handler):
    answer: tuple[int, dict] = (200, {})

    def do_GET(self):  # noqa: N802
        self.server.auth.append(self.headers.get("Authorization"))  # type: ignore[attr-defined]
        self.reply(*self.server.answer)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "status,body,expect",
    [
        (200, {"status": "error", "errorType": "timeout", "error": "query timed out"}, "status='error'"),
        (503, {"status": "success", "data": {"resultType": "vector", "result": []}}, "HTTP 503"),
        (200, {"status": "success", "data": {"resultType": "matrix", "result": []}}, "resultType 'matrix'"),
    ],
)
def test_prometheus_answers_that_are_not_success_fail_closed(capsys, status, body, expect):
    server = loopback_http.start(_FakeProm)
    server.answer = (status, body)  # type: ignore[attr-defined]
    server.auth = []  # type: ignore[attr-defined]
    try:
        rc, err = gate(capsys, "mirror-lag", "--prometheus-url", loopback_http.url(server), "--timeout", "0", "--interval", "0.1")
        assert rc == 1
        assert expect in err
    finally:
        loopback_http.stop(server)


def test_prometheus_token_comes_from_env_and_is_not_printed(capsys, monkeypatch):
    token = "prom-tok-51c0-SECRET"
    monkeypatch.setenv("KUBEHOP_PROMETHEUS_TOKEN", token)
    monkeypatch.setenv("KUBEHOP_PROMETHEUS_URL", "http://127.0.0.1:1")  # overridden below
    server = loopback_http.start(_FakeProm)
    server.answer = (200, {"status": "success", "data": {"resultType": "vector", "result": [  # type: ignore[attr-defined]
        {"metric": {"consumergroup": "orders"}, "value": [0, "4000"]}]}})
    server.auth = []  # type: ignore[attr-defined]
    try:
        rc, err = gate(capsys, "kafka-lag", "--prometheus-url", loopback_http.url(server), "--timeout", "0")
        assert rc == 1 and "worst: orders=4000" in err
        assert server.auth == [f"Bearer {token}"]  # type: ignore[attr-defined]
        assert token not in err
    finally:
        loopback_http.stop(server)


def test_lag_verdict_rules():
    s = [Sample({"consumergroup": "a"}, 10), Sample({"consumergroup": "a"}, 990), Sample({"consumergroup": "b"}, 999)]
    v = lag_verdict(s, label="consumergroup", threshold=1000, keys=None)
    assert not v.ok and "a=1000" in v.detail  # summed per group, and 1000 is not < 1000
    v = lag_verdict(s[1:], label="consumergroup", threshold=1000, keys=None)
    assert v.ok
    # a scalar, or series without the label, prove nothing about any group: fail closed, even at 0
    for unlabelled in ([Sample({}, 0)], [Sample({"topic": "events"}, 0), *s[1:]], [Sample({"consumergroup": ""}, 0)]):
        v = lag_verdict(unlabelled, label="consumergroup", threshold=1000, keys=None)
        assert not v.ok and "without a consumergroup label" in v.detail, v.detail
    v = lag_verdict([], label="consumergroup", threshold=1000, keys=None)
    assert not v.ok
    v = lag_verdict([Sample({"consumergroup": "b"}, math.nan)], label="consumergroup", threshold=1000, keys=None)
    assert not v.ok
    many = [Sample({"consumergroup": f"g{i}"}, 2000 + i) for i in range(8)]
    v = lag_verdict(many, label="consumergroup", threshold=1000, keys=None)
    assert "worst: g7=2007, g6=2006, g5=2005, g4=2004, g3=2003" in v.detail and "g2=" not in v.detail


# ---------------------------------------------------------------- mirror-lag


def test_mirror_lag_default_query_passes_then_fails_naming_topic(stack, capsys):
    set_and_sync(stack)
    base = ["--prometheus-url", stack.url, "--interval", "0.5"]
    rc, err = gate(capsys, "mirror-lag", *base, "--timeout", "3")
    assert rc == 0, err
    assert "all 2 topics under 1000" in err
    set_and_sync(stack, **{"mirror__cluster_a.payments": 4200})
    rc, err = gate(capsys, "mirror-lag", *base, "--timeout", "1")
    assert rc == 1
    assert "worst: cluster_a.payments=4200" in err.splitlines()[-1]
    # key topics: only cluster_a.orders counts -> passes despite payments lagging
    rc, err = gate(capsys, "mirror-lag", *base, "--timeout", "1", "--groups", "cluster_a.orders")
    assert rc == 0, err


# ------------------------------------------------------------------------ slo

SLO_QUERIES = [
    "--query",
    'error_rate=max(app_error_ratio{service="api"})<=0.01',
    "--query",
    "p99_latency=max(app_latency_p99_seconds)<=0.5",
]


def test_slo_passes_when_it_holds_for_the_whole_window(stack, capsys):
    set_and_sync(stack)
    t0 = time.monotonic()
    rc, err = gate(capsys, "slo", "--prometheus-url", stack.url, *SLO_QUERIES, "--window", "2", "--interval", "0.5")
    elapsed = time.monotonic() - t0
    assert rc == 0, err
    assert elapsed >= 2
    looks = [l for l in err.splitlines() if l.startswith("[slo] look")]
    assert len(looks) >= 4 and all(": ok: " in l for l in looks)
    assert "error_rate=0.002 (<=0.01), p99_latency=0.2 (<=0.5)" in looks[-1]


def test_slo_breach_fails_at_once(stack, capsys):
    set_and_sync(stack, p99=0.75)
    t0 = time.monotonic()
    rc, err = gate(capsys, "slo", "--prometheus-url", stack.url, *SLO_QUERIES, "--window", "60", "--interval", "0.5")
    assert rc == 1
    assert time.monotonic() - t0 < 3
    looks = [l for l in err.splitlines() if l.startswith("[slo] look")]
    assert len(looks) == 1 and "BREACH" in looks[0]
    assert "p99_latency" in err.splitlines()[-1] and "=0.75 breaches p99_latency<=0.5" in err.splitlines()[-1]


def test_slo_breach_mid_window_stops_polling(stack, capsys):
    set_and_sync(stack)
    timer = threading.Timer(1.0, baseline, args=(stack.exporter,), kwargs={"error_ratio": 0.2})
    timer.start()
    try:
        t0 = time.monotonic()
        rc, err = gate(capsys, "slo", "--prometheus-url", stack.url, *SLO_QUERIES, "--window", "30", "--interval", "0.3")
        elapsed = time.monotonic() - t0
    finally:
        timer.cancel()
    assert rc == 1
    assert elapsed < 8
    looks = [l for l in err.splitlines() if l.startswith("[slo] look")]
    assert ": ok: " in looks[0]
    assert "BREACH" in looks[-1] and all("BREACH" not in l for l in looks[:-1])
    assert 'error_rate=0.2 breaches error_rate<=0.01' in err.splitlines()[-1]


def test_slo_empty_and_nan_fail_closed_and_min_objective(stack, capsys):
    base = ["--prometheus-url", stack.url, "--window", "5", "--interval", "0.5"]
    rc, err = gate(capsys, "slo", *base, "--query", "gone=sum(no_such_metric)<=1")
    assert rc == 1 and "gone: query returned no series" in err
    rc, err = gate(capsys, "slo", *base, "--query", "ratio=vector(0)/vector(0)<=1")
    assert rc == 1 and "ratio is NaN" in err
    set_and_sync(stack, success=0.95)
    rc, err = gate(capsys, "slo", *base, "--query", "success=app_success_ratio>=0.99")
    assert rc == 1 and 'service="api"}=0.95' in err and "=0.95 breaches success>=0.99" in err
    rc, err = gate(capsys, "slo", "--prometheus-url", stack.url, "--window", "0", "--query", "success=app_success_ratio>=0.9")
    assert rc == 0, err


@pytest.mark.parametrize("breaching", ["orders__cluster_a.orders__0", "velocity-al__velocity-al.scores__0",
                                       "backfill__backfill.events__0"])
def test_slo_checks_every_series_the_query_returns(stack, capsys, breaching):
    """Six series; whichever one breaches (first, last or in between in Prometheus' answer) fails the gate."""
    set_and_sync(stack, **{breaching: 500})
    rc, err = gate(capsys, "slo", "--prometheus-url", stack.url, "--window", "0",
                   "--query", f"lag={LAG}<=100")
    group, topic, _ = breaching.split("__")
    last = err.splitlines()[-1]
    assert rc == 1, err
    assert f'consumergroup="{group}"' in last and f'topic="{topic}"' in last and "=500 breaches lag<=100" in last


def test_slo_query_argument_parsing(capsys):
    o = parse_objective('err=sum(rate(x{code=~"5.."}[5m])) <= bool 1 <= 0.01')
    assert (o.name, o.op, o.bound) == ("err", "<=", 0.01)
    assert o.promql == 'sum(rate(x{code=~"5.."}[5m])) <= bool 1'
    o = parse_objective("ok=avg(up)>=0.9")
    assert (o.promql, o.op, o.bound) == ("avg(up)", ">=", 0.9)
    for bad in ("no-bound=up", "=up<=1", "x=<=1", "x=up<=abc", "x=up<=nan"):
        with pytest.raises(SystemExit) as exc:
            cli.main(["slo", "--prometheus-url", "http://127.0.0.1:9", "--query", bad])
        assert exc.value.code == 2, bad
    with pytest.raises(SystemExit) as exc:  # --prometheus-url is required without the env var
        cli.main(["kafka-lag"])
    assert exc.value.code == 2
