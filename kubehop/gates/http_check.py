"""`http-check`: named URLs answer with an accepted HTTP status (runbook 6.3.4:
Grafana / Jumpserver / Loki through the ingress).

    --url grafana=https://grafana.example/api/health=200
    --url jumpserver=https://jump.example/=200,302

The name is up to the first '=', the accepted statuses after the last '=',
the URL is everything between (so URLs with '=' in the query string work).
Redirects are not followed unless --follow-redirects: the status checked is
the one the URL itself answered. Unreachable / timed out fails closed.
"""
from __future__ import annotations

import argparse
import re
import sys
import warnings
from dataclasses import dataclass

import requests

from kubehop.gates.common import GateError, Verdict, add_poll_arguments, poll


def describe_request_error(exc: BaseException) -> str:
    """A short, operator-readable reason for a failed request (no URL dump)."""
    text = str(exc)
    errno = re.findall(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if errno:
        return f"{type(exc).__name__}: {errno[-1].strip()}"
    if isinstance(exc, requests.Timeout):
        return f"{type(exc).__name__}: no answer in time"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"SSLError: {text[-200:]}"
    return f"{type(exc).__name__}: {text[:200]}"


@dataclass(frozen=True)
class UrlCheck:
    name: str
    url: str
    statuses: frozenset[int]


def parse_url_check(text: str) -> UrlCheck:
    name, sep, rest = text.partition("=")
    url, sep2, status_text = rest.rpartition("=")
    name, url = name.strip(), url.strip()
    if not sep or not sep2 or not name or not url:
        raise argparse.ArgumentTypeError(f"expected NAME=URL=STATUS[,STATUS...], got {text!r}")
    if not url.lower().startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text!r}: URL must start with http:// or https://")
    try:
        statuses = frozenset(int(s) for s in status_text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: statuses {status_text!r} must be integers like 200,302") from None
    if not statuses or any(not 100 <= s <= 599 for s in statuses):
        raise argparse.ArgumentTypeError(f"{text!r}: statuses must be within 100-599")
    return UrlCheck(name, url, statuses)


def _accepted(check: UrlCheck) -> str:
    return ",".join(str(s) for s in sorted(check.statuses))


def look(checks: list[UrlCheck], *, timeout: float, verify, follow_redirects: bool) -> Verdict:
    good, bad = [], []
    for c in checks:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # InsecureRequestWarning with --insecure
                resp = requests.get(c.url, timeout=timeout, verify=verify, allow_redirects=follow_redirects)
            resp.close()
        except requests.RequestException as exc:
            bad.append(f"{c.name} ({c.url}) unreachable: {describe_request_error(exc)}")
            continue
        if resp.status_code in c.statuses:
            good.append(f"{c.name}={resp.status_code}")
        else:
            bad.append(f"{c.name} ({c.url}) answered {resp.status_code}, want {_accepted(c)}")
    if bad:
        return Verdict(False, f"{len(bad)} of {len(checks)} failing: " + "; ".join(bad))
    return Verdict(True, f"all {len(checks)} URLs answered as expected: " + ", ".join(good))


def run(args) -> str:
    names = [c.name for c in args.url]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise GateError(f"duplicate --url names: {', '.join(dupes)}")
    verify = False if args.insecure else (args.ca_bundle or True)
    return poll(
        "http-check",
        lambda: look(args.url, timeout=args.request_timeout, verify=verify, follow_redirects=args.follow_redirects),
        timeout=args.timeout,
        interval=args.interval,
        out=sys.stderr,
    ).detail


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "http-check",
        help="named URLs answer with an accepted HTTP status (runbook 6.3.4 ingress checks)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--url",
        action="append",
        required=True,
        type=parse_url_check,
        metavar="NAME=URL=STATUS[,STATUS]",
        help="repeat for several URLs",
    )
    p.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    p.add_argument("--ca-bundle", default=None, metavar="PATH", help="CA bundle to verify TLS with")
    p.add_argument("--follow-redirects", action="store_true", help="check the status after following redirects")
    p.add_argument("--request-timeout", type=float, default=10.0, help="seconds per request (default 10)")
    add_poll_arguments(p, timeout=300, interval=10)
    p.set_defaults(func=run)
