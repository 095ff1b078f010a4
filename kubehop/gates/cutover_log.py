"""Where the cutover actions keep the cutover record (kubehop/cutover_record.py):
SSM Parameter Store in the cluster's region, through boto3.

`--record NAME --record-region REGION` on traffic-set, serviceswitch and
mirrormaker; `--clear-records PATH` on the canary. The endpoint comes from
boto3's own configuration (AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_SSM: botocore
configprovider.py, the service-specific endpoint lookup), which is how the
tests point it at moto.

API facts relied on (botocore's ssm service model in the venv, and the SSM API
reference): PutParameter with Overwrite=true replaces a String parameter's
value, and a standard-tier value holds at most 4096 characters (the service's
ValidationException says so); GetParameter's errors include ParameterNotFound;
GetParametersByPath returns at most MaxResults (1-10) per call, possibly fewer,
with a NextToken while more remain; DeleteParameters takes 1-10 names.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from kubehop import cutover_record
from kubehop.gates.common import GateError

MAX_VALUE = 4096  # standard-tier parameter value limit (bytes)


def add_record_arguments(parser, *, clear: bool = False) -> None:
    group = parser.add_argument_group("cutover record (SSM Parameter Store, kubehop/cutover_record.py)")
    if clear:
        group.add_argument("--clear-records", metavar="PATH", help="once passed, delete every record under this path")
    else:
        group.add_argument("--record", metavar="NAME", help="write this action's effect to this SSM parameter, before and after")
    group.add_argument("--record-region", metavar="REGION", help="the region of the record (the cluster's)")


def _client(region: str):
    # one client per region and endpoint setting: a session's service models cost most of a second
    return _cached_client(region, os.environ.get("AWS_ENDPOINT_URL_SSM") or os.environ.get("AWS_ENDPOINT_URL"))


@functools.lru_cache(maxsize=None)
def _cached_client(region: str, endpoint: str | None):
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=20)
    return boto3.session.Session(region_name=region).client("ssm", config=config)


def _fail(what: str, exc: Exception) -> GateError:
    code = exc.response.get("Error", {}).get("Code", "?") if isinstance(exc, ClientError) else type(exc).__name__
    return GateError(f"cutover record: {what} failed ({code}); the record keeps what was written before it "
                     "(an action is written ahead, so its undo still runs). Fix: give the "
                     "operator's AWS credentials ssm:PutParameter, ssm:GetParameter(s)ByPath and ssm:DeleteParameters "
                     f"on {cutover_record.ROOT}/*, then re-run `pulumi up`")


def _region(args) -> str:
    if not args.record_region:
        raise GateError("--record needs --record-region")
    return args.record_region


def read(args) -> dict | None:
    """The parsed value of `--record`, or None when it does not exist."""
    try:
        value = _client(_region(args)).get_parameter(Name=args.record)["Parameter"]["Value"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise _fail(f"reading {args.record}", exc) from None
    except BotoCoreError as exc:
        raise _fail(f"reading {args.record}", exc) from None
    try:
        data = json.loads(value)
    except ValueError:
        raise GateError(f"cutover record {args.record} is not JSON; inspect it with `aws ssm get-parameter`") from None
    return data if isinstance(data, dict) else None


def write(args, effect: str, state: str, *, done: bool, undo: dict | None = None) -> None:
    """Record `effect` as (going) in `state`; a no-op without --record."""
    if not getattr(args, "record", None):
        return
    value = cutover_record.encode(effect, state, done=done, undo=undo)
    if len(value.encode()) > MAX_VALUE:
        raise GateError(f"cutover record {args.record}: {len(value)} bytes is over the {MAX_VALUE}-byte parameter limit")
    try:
        _client(_region(args)).put_parameter(Name=args.record, Value=value, Type="String", Overwrite=True)
    except (ClientError, BotoCoreError) as exc:
        raise _fail(f"writing {args.record}", exc) from None


def listing(region: str, prefix: str) -> dict[str, str]:
    """Every parameter under `prefix` (name -> value), all pages."""
    client = _client(region)
    found: dict[str, str] = {}
    kwargs: dict[str, Any] = {"Path": prefix, "Recursive": True}
    try:
        while True:
            page = client.get_parameters_by_path(**kwargs)
            found.update({p["Name"]: p["Value"] for p in page.get("Parameters", [])})
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]
    except (ClientError, BotoCoreError) as exc:
        raise _fail(f"reading {prefix}", exc) from None


def clear(args) -> int:
    """Delete every record under --clear-records; how many there were."""
    prefix = getattr(args, "clear_records", None)
    if not prefix:
        return 0
    names = sorted(listing(_region(args), prefix))
    try:
        for i in range(0, len(names), 10):
            _client(_region(args)).delete_parameters(Names=names[i:i + 10])
    except (ClientError, BotoCoreError) as exc:
        raise _fail(f"clearing {prefix}", exc) from None
    return len(names)
