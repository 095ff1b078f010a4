"""The cutover record: what a maintenance transition has changed so far, kept
outside the stack so that a failed run cannot lose it.

Why not the stack outputs: a failed `pulumi up` keeps the stack's previous
outputs (the Python SDK sends them in one RegisterResourceOutputs only once
every value resolves; pulumi/pulumi#15754), so after a maintaining run that
failed past `traffic-maintain` the stack still says `serving`. Each cutover
action therefore writes its own SSM parameter, under
`/kubehop/<cluster>/cutover/`, *before* it acts (write-ahead: a crash
between the change and the record cannot hide the change) and again once its
effect is verified:

- `traffic`                 by traffic-maintain (the cluster is out of service)
- `mysql`                   by the ServiceSwitch switch, with the merge patch that undoes it
- `mirrormaker/<cluster>`   by each MirrorMaker stop (the replica count is in the workload's annotation)

The next run reads the whole path (`aws:ssm/getParametersByPath`, an invoke,
so `pulumi preview` sees it too) and, while `traffic.state` is `serving`,
registers the serving transition for exactly what the record names, in the
undo order (MirrorMaker, lag gates, MySQL back, traffic through the canary).
The canary, the transition's last step, deletes the record once users are
back: the set of steps stays the same through every retry of a failed
serving run, so a lag gate can never drop out from under a retried run.

Plain Python: the program, the gates and the offline plan share it.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from kubehop.problems import Problem, Problems
from kubehop.record import arg

ROOT = "/kubehop"
TRAFFIC, MYSQL, MIRRORMAKER = "traffic", "mysql", "mirrormaker"
AWAY = {TRAFFIC: "maintaining", MYSQL: "standby", MIRRORMAKER: "stopped"}
"""The state each effect is in while the cluster is out of service."""
REST = {TRAFFIC: "serving", MYSQL: "primary", MIRRORMAKER: "running"}
# SSM parameter names: letters, digits and _.-/ (AWS SSM PutParameter API reference, Name)
_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")


class RecordError(Problems):
    """A record that cannot be read as one: never acted on."""


def path(cluster: str) -> str:
    """The SSM path that holds one cluster's record (no trailing slash)."""
    name = f"{ROOT}/{cluster}/cutover"
    if not _NAME.match(name):
        raise ValueError(f"cluster name {cluster!r} cannot be part of an SSM parameter name")
    return name


def parameter(cluster: str, effect: str, target: str | None = None) -> str:
    """The parameter one effect is recorded in; MirrorMaker has one per cluster it runs on."""
    if effect not in AWAY:
        raise ValueError(f"unknown effect {effect!r}")
    return f"{path(cluster)}/{effect}" + (f"/{target}" if target else "")


def encode(effect: str, state: str, *, done: bool, undo: dict | None = None) -> str:
    """The parameter's value: the effect, the state it is (going) in, whether that is verified,
    and for MySQL the merge patch that puts the ServiceSwitch back."""
    if state not in (AWAY[effect], REST[effect]):
        raise ValueError(f"{effect} has no state {state!r}")
    value: dict[str, Any] = {"effect": effect, "state": state, "done": bool(done)}
    if undo is not None:
        value["undo"] = undo
    return json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class Entry:
    effect: str
    target: str | None
    state: str
    done: bool
    undo: dict | None = None


@dataclass(frozen=True)
class Record:
    """One cluster's record: every parameter under its path, read together."""

    entries: tuple[Entry, ...] = field(default_factory=tuple)

    @property
    def open(self) -> bool:
        """A transition is under way or was left part done: the serving run has work."""
        return bool(self.entries)

    def get(self, effect: str, target: str | None = None) -> Entry | None:
        return next((e for e in self.entries if e.effect == effect and e.target == target), None)

    @property
    def mirrormaker(self) -> list[str]:
        """The clusters whose MirrorMaker a stop was (or may have been) run on."""
        return sorted(e.target for e in self.entries if e.effect == MIRRORMAKER and e.target)

    def summary(self) -> dict[str, str]:
        """effect[/target] -> state (with ", not verified" for a write-ahead entry), for the plan."""
        return {(e.effect + (f"/{e.target}" if e.target else "")): e.state + ("" if e.done else ", not verified")
                for e in self.entries}


def decode(cluster: str, pairs: Iterable[tuple[str, str]]) -> Record:
    """A Record from (parameter name, value) pairs; names outside the cluster's path are ignored,
    anything else that is not a record is refused (a record kubehop cannot read is never guessed at)."""
    base = path(cluster) + "/"
    entries, problems = [], []
    for name, value in sorted(pairs):
        if not name.startswith(base):
            continue
        rest = name[len(base):].split("/")
        effect, target = rest[0], "/".join(rest[1:]) or None
        try:
            data = json.loads(value)
            ok = (isinstance(data, dict) and data.get("effect") == effect and effect in AWAY
                  and data.get("state") in (AWAY[effect], REST[effect]) and isinstance(data.get("done"), bool)
                  and (target is not None) == (effect == MIRRORMAKER)
                  and (data.get("undo") is None or isinstance(data["undo"], dict)))
        except ValueError:
            ok = False
        if not ok:
            problems.append(Problem(key=name, secret=True, message="is not a kubehop cutover record",
                                    fix=f"inspect it with `aws ssm get-parameter --name {name}`; delete it only once "
                                        "traffic, MySQL and MirrorMaker are back as they were"))
            continue
        entries.append(Entry(effect, target, data["state"], data["done"], data.get("undo")))
    if problems:
        raise RecordError(problems)
    return Record(tuple(entries))


def from_invoke(cluster: str, result: Mapping[str, Any] | None) -> Record:
    """The result of `aws:ssm/getParametersByPath` (parallel `names` and `values` lists:
    pulumi_aws/ssm/get_parameters_by_path.py; empty lists when the path holds nothing)."""
    result = result or {}
    names, values = list(result.get("names") or []), list(result.get("values") or [])
    if len(names) != len(values):
        raise RecordError([Problem(key=path(cluster), secret=True, message="came back with names and values that do not pair up",
                                   fix="re-run `pulumi preview`; report it if it persists")])
    return decode(cluster, zip(names, values, strict=True))


def from_cli_json(data: Any) -> dict[str, str]:
    """Parameter name -> value from the JSON `aws ssm get-parameters-by-path --path P --recursive`
    prints (`{"Parameters": [{"Name": ..., "Value": ...}, ...]}`, the API's response shape)."""
    params = data.get("Parameters") if isinstance(data, dict) else None
    if not isinstance(params, list) or not all(isinstance(p, dict) and isinstance(p.get("Name"), str)
                                               and isinstance(p.get("Value"), str) for p in params):
        raise RecordError([Problem(key="--record", secret=True, message="is not the JSON of `aws ssm get-parameters-by-path`",
                                   fix=f"write it with `aws ssm get-parameters-by-path --path {ROOT}/<cluster>/cutover "
                                       "--recursive > FILE` and pass it unchanged")])
    return {p["Name"]: p["Value"] for p in params}


def reverse_merge_patch(target: Any, patch: Mapping[str, Any]) -> dict:
    """The JSON merge patch (RFC 7386) that takes `target` back after `patch` is applied to it:
    each key the patch sets gets its old value, or null where it was absent."""
    have = target if isinstance(target, dict) else {}
    out: dict[str, Any] = {}
    for key, want in patch.items():
        if key not in have:
            out[key] = None
        elif isinstance(want, dict) and isinstance(have[key], dict):
            out[key] = reverse_merge_patch(have[key], want)
        else:
            out[key] = have[key]
    return out


def written_by(cluster: str, gate: str, argv: list[str]) -> tuple[str, str | None] | None:
    """What a cutover action leaves in the record once it passed: (parameter, value), or
    (path, None) for the canary's delete; None for a step that writes nothing.
    The offline plan carries the record from stage to stage with it."""
    if gate == "canary" and arg(argv, "--clear-records"):
        return arg(argv, "--clear-records"), None
    name = arg(argv, "--record")
    if not name or not name.startswith(path(cluster) + "/"):
        return None
    effect = name[len(path(cluster)) + 1:].split("/")[0]
    if effect == TRAFFIC and gate == "traffic-set":
        return name, encode(TRAFFIC, AWAY[TRAFFIC], done=True)
    if effect == MYSQL and gate == "serviceswitch":
        state = REST[MYSQL] if "--undo-from-record" in argv else AWAY[MYSQL]
        return name, encode(MYSQL, state, done=True)
    if effect == MIRRORMAKER and gate == "mirrormaker":
        return name, encode(MIRRORMAKER, AWAY[MIRRORMAKER] if arg(argv, "--action") == "stop" else REST[MIRRORMAKER], done=True)
    return None
