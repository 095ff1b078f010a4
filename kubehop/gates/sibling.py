"""`sibling-state`: right before this cluster leaves service, the sibling must be
serving, read live from the traffic control (not from the sibling's last
recorded kubehop state, which is stale exactly while the sibling's own run is
under way or failed half-way).

    python -m kubehop gate sibling-state --cluster aws-uswest2-prod-a --min-share 50 \\
        --traffic-kind http --traffic-url https://dapp.example/api/traffic

Serving: state `available` with at least --min-share percent of user traffic,
and (with --sibling-record-path) an empty cutover record: kubehop on the sibling
has no maintenance under way or left part done (kubehop/cutover_record.py).
Refused: `maintaining`; `available` below --min-share (switching: a canary or
a ramp is under way, or it takes no traffic yet); any other state; and unknown
(unreachable, an error answer, no entry for the cluster): fail closed.
"""
from __future__ import annotations

import argparse
import sys

from kubehop.gates import cutover_log
from kubehop.gates.common import GateError, Verdict, add_poll_arguments, poll
from kubehop.gates.traffic import CONTROL_STATE, add_traffic_arguments, config_from_args, parse_share, read_traffic


def judge(entry: dict, cluster: str, min_share: int) -> Verdict:
    """Whether `cluster`, reported as `entry`, is serving enough users to take this cluster's."""
    state, share = entry.get("state"), entry.get("share")
    try:
        percent = float(share)
    except (TypeError, ValueError):
        return Verdict(False, f"{cluster} reports share {share!r}, not a number: its state is unknown")
    if state == CONTROL_STATE["maintaining"]:
        return Verdict(False, f"{cluster} is maintaining (share {percent:g}%): both clusters would be out of service")
    if state != CONTROL_STATE["serving"]:
        return Verdict(False, f"{cluster} reports state {state!r}, neither available nor maintaining: unknown")
    if percent < min_share:
        return Verdict(False, f"{cluster} is switching: available with {percent:g}% of users, below {min_share}% "
                              f"(a canary or ramp is under way)")
    return Verdict(True, f"{cluster} is serving ({percent:g}% of users)")


def judge_record(entries: dict[str, str], cluster: str) -> Verdict:
    """The sibling's own cutover record must be empty: an open one means its maintenance is
    under way or was left part done, whatever its traffic control says this second."""
    if entries:
        names = ", ".join(sorted(n.rsplit("/cutover/", 1)[-1] for n in entries))
        return Verdict(False, f"{cluster}'s cutover record is open ({names}): its own maintenance is under way "
                              "or was left part done; finish or undo it there first")
    return Verdict(True, f"{cluster} has no open cutover record")


def run(args) -> str:
    cfg = config_from_args(args)
    if args.sibling_record_path and not args.record_region:
        raise GateError("--sibling-record-path needs --record-region")

    def look() -> Verdict:
        verdict = judge(read_traffic(cfg, args.cluster), args.cluster, args.min_share)
        if verdict.ok and args.sibling_record_path:
            recorded = judge_record(cutover_log.listing(args.record_region, args.sibling_record_path), args.cluster)
            return Verdict(recorded.ok, f"{verdict.detail}; {recorded.detail}")
        return verdict

    verdict = poll("sibling-state", look, timeout=args.timeout, interval=args.interval, out=sys.stderr)
    return verdict.detail


def register(subparsers) -> None:
    p = subparsers.add_parser("sibling-state", help="the sibling cluster is serving, read live from the traffic control",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cluster", required=True, help="the sibling's name as the traffic control knows it")
    p.add_argument("--min-share", type=parse_share, default=1,
                   help="least percent of users the sibling must serve (default 1)")
    p.add_argument("--sibling-record-path", metavar="PATH",
                   help="the sibling's cutover record (/kubehop/<sibling>/cutover): refused while it holds anything")
    p.add_argument("--record-region", metavar="REGION", help="the region of the sibling's record")
    add_traffic_arguments(p)
    add_poll_arguments(p, timeout=300, interval=15)
    p.set_defaults(func=run)
