"""`traffic-set`: set a cluster's DAPP state and traffic share (runbook 6.2.1,
6.5.3, 6.5.5) through the configured traffic control (see kubehop/gates/traffic.py).

    python -m kubehop gate traffic-set --traffic-config kubehop.yaml \\
        --cluster west-b --state maintaining --share 0
"""
from __future__ import annotations

import argparse

from kubehop import cutover_record
from kubehop.gates import cutover_log
from kubehop.gates.common import GateError
from kubehop.gates.traffic import STATES, add_traffic_arguments, config_from_args, parse_share, set_traffic


def run(args) -> str:
    """With --record (traffic-maintain), the record says "maintaining" before the
    traffic control is asked, so a failure after the call still leaves it named."""
    config = config_from_args(args)
    if args.record and args.state != "maintaining":
        raise GateError("--record is for --state maintaining (the canary ends the transition)")
    cutover_log.write(args, cutover_record.TRAFFIC, "maintaining", done=False)
    result = set_traffic(config, args.cluster, args.state, args.share)
    cutover_log.write(args, cutover_record.TRAFFIC, "maintaining", done=True)
    return result


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "traffic-set",
        help="set a cluster's state (maintaining/available) and traffic share; idempotent, verified",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--cluster", required=True, help="cluster name as the traffic control knows it")
    p.add_argument("--state", required=True, choices=STATES)
    p.add_argument("--share", required=True, type=parse_share, help="percent of user traffic, 0-100 (maintaining needs 0)")
    add_traffic_arguments(p)
    cutover_log.add_record_arguments(p)
    p.set_defaults(func=run)
