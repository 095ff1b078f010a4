"""Gates that ask Prometheus (HTTP API `/api/v1/query`) before and after an upgrade.

- `kafka-lag`  (runbook 6.2.3 / 6.5.2): every (key) consumer group's lag < threshold.
- `mirror-lag` (runbook 6.5.2): MirrorMaker lag per topic < threshold.
- `slo`        (runbook 6.5.4): each `NAME=PROMQL<=MAX` (or `>=MIN`) holds on every
  look for a whole window; the first breach fails at once.

Everything fails closed: an unreachable Prometheus, an HTTP error, a
`status` other than `success`, a NaN sample or an empty result is never a pass.

Auth: if the environment variable KUBEHOP_PROMETHEUS_TOKEN is set it is sent
as a bearer token (it is never taken from argv and never printed).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable, TextIO

import requests

from kubehop.gates.common import GateError, Verdict, add_poll_arguments, poll
from kubehop.gates.http_check import describe_request_error

PROMETHEUS_URL_ENV = "KUBEHOP_PROMETHEUS_URL"
PROMETHEUS_TOKEN_ENV = "KUBEHOP_PROMETHEUS_TOKEN"

DEFAULT_KAFKA_LAG_QUERY = "sum by (consumergroup) (kafka_consumergroup_lag)"
# kafka_exporter (the exporter behind the runbook's "kafka-exporter-for-all"
# dashboard) reports MirrorMaker's own consumer group like any other group;
# its lag per topic is the mirror lag. Sites with a dedicated mirror-lag
# metric pass --query.
DEFAULT_MIRROR_LAG_QUERY = 'sum by (topic) (kafka_consumergroup_lag{consumergroup=~".*mirror.*"})'
DEFAULT_LAG_THRESHOLD = 1000.0
WORST_SHOWN = 5


class PrometheusError(GateError):
    """Prometheus could not give a usable answer (fail closed)."""


@dataclass(frozen=True)
class Sample:
    labels: dict
    value: float


def _headers() -> dict:
    token = os.environ.get(PROMETHEUS_TOKEN_ENV)
    return {"Authorization": f"Bearer {token}"} if token else {}


def query(
    base_url: str,
    promql: str,
    *,
    timeout: float = 10.0,
    verify: bool = True,
) -> list[Sample]:
    """Run an instant query; return its samples (a scalar is one label-less sample).

    Raises PrometheusError when unreachable, on a non-2xx answer, on a status
    other than success, or on a result type that is neither vector nor scalar.
    """
    url = base_url.rstrip("/") + "/api/v1/query"
    try:
        resp = requests.get(url, params={"query": promql}, headers=_headers(), timeout=timeout, verify=verify)
    except requests.RequestException as exc:
        raise PrometheusError(f"Prometheus at {base_url} unreachable: {describe_request_error(exc)}") from None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise PrometheusError(
            f"Prometheus answered HTTP {resp.status_code} without a JSON body: {resp.text[:200]!r}"
        )
    if resp.status_code // 100 != 2 or body.get("status") != "success":
        raise PrometheusError(
            f"Prometheus answered HTTP {resp.status_code}, status={body.get('status')!r}: "
            f"{body.get('errorType', '')} {body.get('error', '')}".rstrip()
        )
    data = body.get("data") or {}
    rtype = data.get("resultType")
    result = data.get("result")
    try:
        if rtype == "vector":
            return [Sample(dict(item.get("metric") or {}), float(item["value"][1])) for item in result]
        if rtype == "scalar":
            return [Sample({}, float(result[1]))]
    except (TypeError, KeyError, IndexError, ValueError) as exc:
        raise PrometheusError(f"malformed Prometheus result: {exc}") from None
    raise PrometheusError(f"query returned resultType {rtype!r}; need an instant vector or scalar: {promql}")


def _fmt(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:g}"


# ---------------------------------------------------------------- lag gates


def lag_verdict(
    samples: list[Sample],
    *,
    label: str,
    threshold: float,
    keys: list[str] | None,
    what: str = "group",
) -> Verdict:
    """Judge one query result: every (key) series' value must be < threshold.

    Series are grouped by `label` (several series with the same label value
    are summed: lag adds up over partitions). With `keys`, only those count
    and each must be present.
    """
    unlabelled = [_series_name(s.labels) or "a scalar" for s in samples if not s.labels.get(label)]
    if unlabelled:  # a scalar or a series of nothing in particular proves no group's lag: fail closed
        return Verdict(False, f"{len(unlabelled)} series without a {label} label ({', '.join(unlabelled[:WORST_SHOWN])}): "
                              f"the query must aggregate by {label}, e.g. sum by ({label}) (...)")
    lags: dict[str, float] = {}
    for s in samples:
        name = s.labels[label]
        lags[name] = lags.get(name, 0.0) + s.value
    if keys:
        missing = [k for k in keys if k not in lags]
        lags = {k: v for k, v in lags.items() if k in keys}
    else:
        missing = []
    if not lags and not missing:
        return Verdict(False, "query returned no series (empty result fails closed)")
    nan = sorted(k for k, v in lags.items() if math.isnan(v))
    over = {k: v for k, v in lags.items() if not math.isnan(v) and not v < threshold}
    # NaN first (unknown is worst), then the largest lags.
    ranked = sorted(lags.items(), key=lambda kv: (0, 0.0) if math.isnan(kv[1]) else (1, -kv[1]))
    worst = ", ".join(f"{k}={_fmt(v)}" for k, v in ranked[:WORST_SHOWN])
    if missing or nan or over:
        parts = []
        if missing:
            parts.append(f"missing key {what}(s): {', '.join(missing)}")
        if nan:
            parts.append(f"NaN lag for: {', '.join(nan)}")
        if over:
            parts.append(f"{len(over)} of {len(lags)} {what}s at or over {_fmt(threshold)}")
        if worst:
            parts.append(f"worst: {worst}")
        return Verdict(False, "; ".join(parts))
    return Verdict(True, f"all {len(lags)} {what}s under {_fmt(threshold)} (worst: {worst})")


def _parse_keys(text: str | None) -> list[str] | None:
    if not text:
        return None
    keys = [k.strip() for k in text.split(",") if k.strip()]
    return keys or None


def _run_lag(args, *, gate: str, what: str) -> str:
    keys = _parse_keys(args.groups)

    def check() -> Verdict:
        samples = query(args.prometheus_url, args.query, timeout=args.request_timeout, verify=not args.insecure)
        return lag_verdict(samples, label=args.group_label, threshold=args.threshold, keys=keys, what=what)

    return poll(gate, check, timeout=args.timeout, interval=args.interval, out=sys.stderr).detail


def run_kafka_lag(args) -> str:
    return _run_lag(args, gate="kafka-lag", what="consumer group")


def run_mirror_lag(args) -> str:
    return _run_lag(args, gate="mirror-lag", what=args.group_label)


# ---------------------------------------------------------------------- SLO


@dataclass(frozen=True)
class Objective:
    """`NAME=PROMQL<=MAX` (value must be <= bound) or `NAME=PROMQL>=MIN`."""

    name: str
    promql: str
    op: str  # "<=" or ">="
    bound: float

    def holds(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return value <= self.bound if self.op == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.name}{self.op}{_fmt(self.bound)}"


def parse_objective(text: str) -> Objective:
    """Parse `NAME=PROMQL<=MAX` / `NAME=PROMQL>=MIN` (the last `<=`/`>=` splits)."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name or not rest.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=PROMQL<=MAX (or >=MIN), got {text!r}")
    le, ge = rest.rfind("<="), rest.rfind(">=")
    pos = max(le, ge)
    if pos < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: no '<=MAX' or '>=MIN' bound at the end")
    op = rest[pos : pos + 2]
    promql, bound_text = rest[:pos].strip(), rest[pos + 2 :].strip()
    if not promql:
        raise argparse.ArgumentTypeError(f"{text!r}: empty PromQL")
    try:
        bound = float(bound_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: bound {bound_text!r} is not a number") from None
    if math.isnan(bound):
        raise argparse.ArgumentTypeError(f"{text!r}: bound must not be NaN")
    return Objective(name, promql, op, bound)


class SloBreach(GateError):
    """An objective did not hold (or could not be evaluated: fail closed)."""

    def __init__(self, message: str, objective: Objective | None = None, value: float | None = None):
        super().__init__(message)
        self.objective = objective
        self.value = value


def evaluate(objectives: Iterable[Objective], look: Callable[[str], list[Sample]]) -> str:
    """One look at every objective. Returns a summary line or raises SloBreach.

    Every series a query returns must hold; an empty result, a NaN or a failed
    query is a breach (fail closed).
    """
    parts = []
    for obj in objectives:
        try:
            samples = look(obj.promql)
        except GateError as exc:
            raise SloBreach(f"{obj.name}: cannot evaluate ({exc})", obj) from None
        if not samples:
            raise SloBreach(f"{obj.name}: query returned no series (fails closed): {obj.promql}", obj)
        for s in samples:
            series = _series_name(s.labels)
            if math.isnan(s.value):
                raise SloBreach(f"{obj.name}{series} is NaN (fails closed), objective {obj}", obj, s.value)
            if not obj.holds(s.value):
                raise SloBreach(
                    f"{obj.name}{series}={_fmt(s.value)} breaches {obj} (query: {obj.promql})", obj, s.value
                )
        worst = max(s.value for s in samples) if obj.op == "<=" else min(s.value for s in samples)
        parts.append(f"{obj.name}={_fmt(worst)} ({obj.op}{_fmt(obj.bound)})")
    return ", ".join(parts)


def _series_name(labels: dict) -> str:
    labels = {k: v for k, v in labels.items() if k != "__name__"}
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def watch_slo(
    prometheus_url: str,
    objectives: list[Objective],
    *,
    window: float,
    interval: float,
    timeout: float | None = None,
    request_timeout: float = 10.0,
    verify: bool = True,
    name: str = "slo",
    out: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Look every `interval` s for `window` s (first look now, last look at the end).

    Raises SloBreach on the first look that does not hold, without looking
    again. `timeout` (default window + 120 s) caps the wall time, in case
    Prometheus answers so slowly that the window cannot be completed.
    """
    out = out or sys.stderr  # looked up per call, so redirected stderr is honoured
    if not objectives:
        raise GateError("no SLO queries given")
    if timeout is None:
        timeout = window + 120
    if timeout < window:
        raise GateError(f"--timeout {timeout:g}s is shorter than --window {window:g}s")

    def look(promql: str) -> list[Sample]:
        return query(prometheus_url, promql, timeout=request_timeout, verify=verify)

    start = clock()
    attempt = 0
    while True:
        attempt += 1
        elapsed = clock() - start
        try:
            summary = evaluate(objectives, look)
        except SloBreach as exc:
            print(f"[{name}] look {attempt} at {elapsed:.0f}s/{window:g}s: BREACH: {exc}", file=out, flush=True)
            raise
        print(f"[{name}] look {attempt} at {elapsed:.0f}s/{window:g}s: ok: {summary}", file=out, flush=True)
        elapsed = clock() - start
        if elapsed >= window:
            return f"held for {window:g}s over {attempt} looks; last: {summary}"
        if elapsed >= timeout:
            raise GateError(f"{name}: window of {window:g}s not completed within --timeout {timeout:g}s")
        sleep(max(0.0, min(interval, window - elapsed)))


def run_slo(args) -> str:
    return watch_slo(
        args.prometheus_url,
        args.query,
        window=args.window,
        interval=args.interval,
        timeout=args.timeout,
        request_timeout=args.request_timeout,
        verify=not args.insecure,
    )


# ------------------------------------------------------------------ parsers


def add_prometheus_arguments(parser) -> None:
    """--prometheus-url (default $KUBEHOP_PROMETHEUS_URL), --request-timeout, --insecure."""
    default = os.environ.get(PROMETHEUS_URL_ENV)
    parser.add_argument(
        "--prometheus-url",
        default=default,
        required=default is None,
        help=f"Prometheus base URL, e.g. http://prometheus:9090 (default: ${PROMETHEUS_URL_ENV})",
    )
    parser.add_argument("--request-timeout", type=float, default=10.0, help="seconds per HTTP request")
    parser.add_argument("--insecure", action="store_true", help="do not verify Prometheus' TLS certificate")


def _positive(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def add_slo_arguments(parser, *, window: float = 300) -> None:
    """--query NAME=PROMQL<=MAX (repeatable, required) and --window SECONDS."""
    parser.add_argument(
        "--query",
        action="append",
        type=parse_objective,
        required=True,
        metavar="NAME=PROMQL<=MAX",
        help="objective; repeat for several. '>=MIN' also accepted (e.g. success ratio). "
        "Every series the query returns must hold; empty or NaN fails.",
    )
    parser.add_argument(
        "--window", type=_positive, default=window, help=f"seconds the SLO must hold on every look (default {window:g})"
    )


def register(subparsers) -> None:
    for gate, query_default, label_default, what, fn, helptext in (
        (
            "kafka-lag",
            DEFAULT_KAFKA_LAG_QUERY,
            "consumergroup",
            "consumer groups",
            run_kafka_lag,
            "every (key) Kafka consumer group's lag below a threshold (runbook 6.2.3, 6.5.2)",
        ),
        (
            "mirror-lag",
            DEFAULT_MIRROR_LAG_QUERY,
            "topic",
            "label values (topics by default)",
            run_mirror_lag,
            "MirrorMaker lag per topic below a threshold (runbook 6.5.2)",
        ),
    ):
        p = subparsers.add_parser(gate, help=helptext, description=helptext)
        add_prometheus_arguments(p)
        p.add_argument("--query", default=query_default, help=f"PromQL giving one lag per series (default: {query_default})")
        p.add_argument("--group-label", default=label_default, help=f"label naming each series (default: {label_default})")
        p.add_argument(
            "--groups",
            default=None,
            metavar="K1,K2",
            help=f"key {what}: only these count and each must be present (missing fails)",
        )
        p.add_argument(
            "--threshold", type=float, default=DEFAULT_LAG_THRESHOLD, help="pass when every lag is < this (default 1000)"
        )
        add_poll_arguments(p, timeout=1800, interval=15)
        p.set_defaults(func=fn)

    p = subparsers.add_parser(
        "slo",
        help="SLO queries hold on every look for a whole window; the first breach fails (runbook 6.5.4)",
    )
    add_prometheus_arguments(p)
    add_slo_arguments(p)
    p.add_argument("--interval", type=float, default=15, help="seconds between looks (default 15)")
    p.add_argument(
        "--timeout", type=float, default=None, help="cap on total wall time (default: window + 120 s); >= window"
    )
    p.set_defaults(func=run_slo)
