"""Traffic control: a cluster's DAPP state (maintaining / available) and its
share (0-100 %) of user traffic (runbook 6.2.1, 6.5.3-6.5.5).

Two kinds, chosen by config (a mapping, e.g. the `traffic:` section of a YAML file):

http::

    traffic:
      kind: http
      url: https://dapp.example/api/traffic        # may contain {cluster}
      insecure: false            # optional: skip TLS verification
      ca_bundle: /path/ca.pem    # optional
      request_timeout: 10        # optional, seconds per request
      settle_timeout: 30         # optional, seconds to wait for GET to show the change
      settle_interval: 2         # optional

  POST ``{"cluster": ..., "state": ..., "share": ...}`` to the URL, then GET the
  same URL until it shows that state and share. The bearer token comes from the
  environment variable KUBEHOP_TRAFFIC_TOKEN only (never argv, never printed).
  If the first GET already shows the wanted state and share, nothing is POSTed.
  The GET answer may be one object ``{"cluster", "state", "share"}``, a list of
  such objects, ``{"clusters": [...]}`` or ``{"clusters": {name: {"state", "share"}}}``
  or ``{name: {"state", "share"}}``.

command::

    traffic:
      kind: command
      command: dappctl set --cluster {cluster} --state {state} --share {share}
      status_command: dappctl get --cluster {cluster} --json   # optional
      command_timeout: 120       # optional

  The template is split with shlex first and the placeholders are filled into
  each word afterwards, so a value can never become extra words; it runs
  without a shell. The child inherits the environment (KUBEHOP_TRAFFIC_TOKEN
  included), which is how a command gets the token. With ``status_command``
  (printing JSON in one of the shapes above) the change is idempotent and
  verified like the http kind; without it, the command is simply run.

Rule: state ``maintaining`` requires share 0 (a cluster in maintenance gets no
user traffic).

Spelling: the traffic control's states are its own words; kubehop's config and
recorded state say ``serving`` where the traffic control says ``available``.
``CONTROL_STATE`` is the one translation (the program and the gates use it).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, TextIO
from urllib.parse import quote

import requests

from kubehop.gates.common import GateError, Verdict, poll
from kubehop.gates.http_check import describe_request_error

TOKEN_ENV = "KUBEHOP_TRAFFIC_TOKEN"
STATES = ("maintaining", "available")  # the traffic control's words (CONTROL_STATE below)
CONTROL_STATE = {"maintaining": "maintaining", "serving": "available"}
"""kubehop's traffic state (config `traffic.state`) -> the traffic control's word for it."""
KINDS = ("http", "command")


class TrafficError(GateError):
    """Traffic could not be set or verified."""


@dataclass(frozen=True)
class TrafficConfig:
    kind: str
    url: str | None = None
    command: str | None = None
    status_command: str | None = None
    insecure: bool = False
    ca_bundle: str | None = None
    request_timeout: float = 10.0
    settle_timeout: float = 30.0
    settle_interval: float = 2.0
    command_timeout: float = 120.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TrafficError(f"traffic kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "http" and not self.url:
            raise TrafficError("traffic kind http needs a url")
        if self.kind == "http" and not self.url.lower().startswith(("http://", "https://")):
            raise TrafficError(f"traffic url must start with http:// or https://, got {self.url!r}")
        if self.kind == "command" and not self.command:
            raise TrafficError("traffic kind command needs a command template")
        for template in (self.command, self.status_command):
            if template is not None:
                try:
                    if not shlex.split(template):
                        raise TrafficError("traffic command template is empty")
                except ValueError as exc:
                    raise TrafficError(f"traffic command template {template!r}: {exc}") from None

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> "TrafficConfig":
        """Build from a config mapping (its `traffic` key if it has one)."""
        if "traffic" in mapping and isinstance(mapping["traffic"], Mapping):
            mapping = mapping["traffic"]
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(mapping) - known)
        if unknown:
            raise TrafficError(f"unknown traffic config keys: {', '.join(unknown)}")
        if "kind" not in mapping:
            raise TrafficError("traffic config needs a kind (http or command)")
        return cls(**dict(mapping))

    @property
    def verify(self) -> bool | str:
        return False if self.insecure else (self.ca_bundle or True)


def validate(state: str, share: int) -> None:
    if state not in STATES:
        raise TrafficError(f"state must be one of {', '.join(STATES)}, got {state!r}")
    if isinstance(share, bool) or not isinstance(share, int) or not 0 <= share <= 100:
        raise TrafficError(f"share must be an integer percentage 0-100, got {share!r}")
    if state == "maintaining" and share != 0:
        raise TrafficError(f"a maintaining cluster gets no traffic: share must be 0, got {share}")


def _redact(text: str) -> str:
    token = os.environ.get(TOKEN_ENV)
    return text.replace(token, "***") if token else text


def _render(template: str, cluster: str, state: str, share: int) -> list[str]:
    values = {"{cluster}": cluster, "{state}": state, "{share}": str(share)}
    argv = []
    for word in shlex.split(template):
        for key, value in values.items():
            word = word.replace(key, value)
        argv.append(word)
    return argv


def find_entry(body: Any, cluster: str) -> dict:
    """The {state, share} reported for `cluster` in a GET / status answer."""
    entry = None
    if isinstance(body, dict) and "clusters" in body:
        body = body["clusters"]
    if isinstance(body, list):
        entry = next((e for e in body if isinstance(e, dict) and e.get("cluster") == cluster), None)
    elif isinstance(body, dict) and "state" in body:
        if "cluster" in body and body["cluster"] != cluster:
            raise TrafficError(f"status reports cluster {body['cluster']!r}, not {cluster!r}")
        entry = body
    elif isinstance(body, dict):
        entry = body.get(cluster)
    if not isinstance(entry, dict) or "state" not in entry or "share" not in entry:
        raise TrafficError(f"status does not report state and share for cluster {cluster!r}: {str(body)[:200]}")
    return entry


def _matches(entry: dict, state: str, share: int) -> bool:
    try:
        return entry["state"] == state and float(entry["share"]) == float(share)
    except (TypeError, ValueError):
        return False


def _describe(entry: dict) -> str:
    return f"state={entry.get('state')!r} share={entry.get('share')!r}"


class _Backend:
    def __init__(self, cfg: TrafficConfig, cluster: str, out: TextIO):
        self.cfg, self.cluster, self.out = cfg, cluster, out

    def can_read(self) -> bool:
        raise NotImplementedError

    def read(self) -> dict:
        raise NotImplementedError

    def write(self, state: str, share: int) -> None:
        raise NotImplementedError


class _HttpBackend(_Backend):
    @property
    def url(self) -> str:
        return self.cfg.url.replace("{cluster}", quote(self.cluster, safe=""))

    def _request(self, method: str, **kwargs) -> requests.Response:
        token = os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # InsecureRequestWarning when insecure
                resp = requests.request(
                    method,
                    self.url,
                    headers=headers,
                    timeout=self.cfg.request_timeout,
                    verify=self.cfg.verify,
                    allow_redirects=False,
                    **kwargs,
                )
        except requests.RequestException as exc:
            raise TrafficError(
                _redact(f"traffic endpoint {self.url} unreachable ({method}): {describe_request_error(exc)}")
            ) from None
        if resp.status_code // 100 != 2:
            hint = ""
            if resp.status_code in (401, 403):
                hint = f" (check ${TOKEN_ENV}" + (": it is not set)" if not token else ")")
            raise TrafficError(
                _redact(f"traffic endpoint {self.url} answered {method} with HTTP {resp.status_code}{hint}: {resp.text[:200]!r}")
            )
        return resp

    def can_read(self) -> bool:
        return True

    def read(self) -> dict:
        resp = self._request("GET")
        try:
            body = resp.json()
        except ValueError:
            raise TrafficError(_redact(f"traffic endpoint {self.url} GET answered non-JSON: {resp.text[:200]!r}")) from None
        return find_entry(body, self.cluster)

    def write(self, state: str, share: int) -> None:
        print(f"[traffic] POST {self.url}: cluster={self.cluster} state={state} share={share}", file=self.out, flush=True)
        self._request("POST", json={"cluster": self.cluster, "state": state, "share": share})


class _CommandBackend(_Backend):
    def _run(self, template: str, state: str = "", share: int | str = "") -> str:
        argv = _render(template, self.cluster, state, share)
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=self.cfg.command_timeout, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError:
            raise TrafficError(f"traffic command not found: {argv[0]!r}") from None
        except subprocess.TimeoutExpired:
            raise TrafficError(f"traffic command timed out after {self.cfg.command_timeout:g}s: {shlex.join(argv)}") from None
        except OSError as exc:
            raise TrafficError(f"traffic command {argv[0]!r} could not run: {exc}") from None
        if proc.returncode != 0:
            raise TrafficError(
                _redact(
                    f"traffic command exited {proc.returncode}: {shlex.join(argv)}: "
                    f"{(proc.stderr or proc.stdout).strip()[-300:]}"
                )
            )
        return proc.stdout

    def can_read(self) -> bool:
        return bool(self.cfg.status_command)

    def read(self) -> dict:
        text = self._run(self.cfg.status_command)
        try:
            body = json.loads(text)
        except ValueError:
            raise TrafficError(_redact(f"traffic status_command printed non-JSON: {text[:200]!r}")) from None
        return find_entry(body, self.cluster)

    def write(self, state: str, share: int) -> None:
        argv = _render(self.cfg.command, self.cluster, state, share)
        print(f"[traffic] run: {_redact(shlex.join(argv))}", file=self.out, flush=True)
        output = self._run(self.cfg.command, state, share).strip()
        if output:
            print(f"[traffic] command said: {_redact(output[-500:])}", file=self.out, flush=True)


def _backend(cfg: TrafficConfig, cluster: str, out: TextIO) -> _Backend:
    """The backend of the configured kind for one cluster."""
    if not cluster:
        raise TrafficError("cluster name is empty")
    return _HttpBackend(cfg, cluster, out) if cfg.kind == "http" else _CommandBackend(cfg, cluster, out)


def read_traffic(cfg: TrafficConfig, cluster: str, *, out: TextIO | None = None) -> dict:
    """What the traffic control reports for `cluster` now ({state, share}); TrafficError when it
    cannot be read (unreachable, an error answer, no entry for the cluster, no status command)."""
    backend = _backend(cfg, cluster, out or sys.stderr)
    if not backend.can_read():
        raise TrafficError("the traffic control cannot be read: configure a status command")
    return backend.read()


def set_traffic(
    cfg: TrafficConfig,
    cluster: str,
    state: str,
    share: int,
    *,
    out: TextIO | None = None,
    sleep: Callable[[float], None] | None = None,
) -> str:
    """Make `cluster` have `state` and `share`; return a one-line summary.

    Idempotent where the current state can be read: nothing is changed when it
    already holds. Raises TrafficError when unreachable, on a non-2xx answer /
    failing command, or when the change does not show within settle_timeout.
    """
    out = out or sys.stderr  # looked up per call, so redirected stderr is honoured
    validate(state, share)
    backend = _backend(cfg, cluster, out)
    want = f"{cluster} state={state} share={share}%"
    if backend.can_read():
        current = backend.read()
        if _matches(current, state, share):
            message = f"already {want}; nothing changed"
            print(f"[traffic] {message}", file=out, flush=True)
            return message
        print(f"[traffic] {cluster} now {_describe(current)}; setting state={state} share={share}", file=out, flush=True)
    backend.write(state, share)
    if not backend.can_read():
        return f"set {want} (not verified: no status_command configured)"

    def check() -> Verdict:
        entry = backend.read()
        return Verdict(_matches(entry, state, share), f"{cluster} reports {_describe(entry)}")

    kwargs = {"sleep": sleep} if sleep else {}
    try:
        poll("traffic", check, timeout=cfg.settle_timeout, interval=cfg.settle_interval, out=out, **kwargs)
    except GateError as exc:
        raise TrafficError(_redact(f"change to {want} was sent but did not take effect: {exc}")) from None
    return f"set {want} (verified)"


# ------------------------------------------------------------------ CLI glue


def parse_share(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"share must be an integer 0-100, got {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"share must be within 0-100, got {value}")
    return value


def add_traffic_arguments(parser) -> None:
    """--traffic-config FILE and flags overriding its keys (prefixed, so they
    do not clash with other gates' flags in the canary)."""
    g = parser.add_argument_group("traffic control (token from $" + TOKEN_ENV + ")")
    g.add_argument("--traffic-config", metavar="FILE", help="YAML/JSON file; its `traffic:` mapping (or the whole file)")
    g.add_argument("--traffic-kind", choices=KINDS, help="http or command")
    g.add_argument("--traffic-url", help="http kind: state endpoint (may contain {cluster})")
    g.add_argument("--traffic-command", metavar="TEMPLATE", help="command kind: e.g. 'dappctl set {cluster} {state} {share}'")
    g.add_argument("--traffic-status-command", metavar="TEMPLATE", help="command kind: prints JSON state (optional)")
    g.add_argument("--traffic-insecure", action="store_true", default=None, help="http kind: skip TLS verification")
    g.add_argument("--traffic-settle-timeout", type=float, help="seconds to wait for the change to show (default 30)")
    g.add_argument("--traffic-request-timeout", type=float, help="http kind: seconds per request (default 10)")


def config_from_args(args) -> TrafficConfig:
    mapping: dict[str, Any] = {}
    if args.traffic_config:
        import yaml

        try:
            with open(args.traffic_config, encoding="utf-8") as fh:
                loaded = yaml.safe_load(fh) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise TrafficError(f"cannot read --traffic-config {args.traffic_config}: {exc}") from None
        if not isinstance(loaded, Mapping):
            raise TrafficError(f"--traffic-config {args.traffic_config}: expected a mapping")
        if isinstance(loaded.get("traffic"), Mapping):
            loaded = loaded["traffic"]
        mapping.update(loaded)
    for key, attr in (
        ("kind", "traffic_kind"),
        ("url", "traffic_url"),
        ("command", "traffic_command"),
        ("status_command", "traffic_status_command"),
        ("insecure", "traffic_insecure"),
        ("settle_timeout", "traffic_settle_timeout"),
        ("request_timeout", "traffic_request_timeout"),
    ):
        value = getattr(args, attr, None)
        if value is not None:
            mapping[key] = value
    if not mapping.get("kind"):
        raise TrafficError("no traffic control configured: give --traffic-config or --traffic-kind")
    return TrafficConfig.from_mapping(mapping)
