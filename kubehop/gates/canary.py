"""`canary` (runbook 6.5.4-6.5.5): move --canary-share % of user traffic to the
upgraded cluster (state available), watch the SLO queries for --window
seconds, then:

- every look held: set the cluster's share to --final-share (the normal split
  to restore, e.g. 50 for two active-active clusters) and pass;
- a breach (or a look that cannot be evaluated: fail closed), or an
  interruption: route traffic back to the sibling cluster, i.e. share 0 with
  state still `available` (healthy but unpreferred, so the traffic control may
  still fail over to it if the sibling dies; use `traffic-set --state
  maintaining --share 0` to fence it off completely), and fail naming the
  breached query and its value.

    python -m kubehop gate canary --cluster west-b --canary-share 10 --final-share 50 \\
        --prometheus-url http://prometheus:9090 --traffic-config kubehop.yaml --window 600 \\
        --query 'error_rate=sum(rate(http_requests_total{code=~"5.."}[2m]))/sum(rate(http_requests_total[2m]))<=0.01' \\
        --query 'p99_latency=histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[2m])))<=0.5'
"""
from __future__ import annotations

import argparse
import sys
from typing import TextIO

from kubehop.gates import cutover_log
from kubehop.gates.common import GateError
from kubehop.gates.prometheus import SloBreach, add_prometheus_arguments, add_slo_arguments, watch_slo
from kubehop.gates.traffic import CONTROL_STATE, TrafficConfig, add_traffic_arguments, config_from_args, parse_share, set_traffic

ROLLBACK_STATE = CONTROL_STATE["serving"]
ROLLBACK_SHARE = 0


def run_canary(
    cfg: TrafficConfig,
    cluster: str,
    *,
    canary_share: int,
    final_share: int,
    prometheus_url: str,
    objectives,
    window: float,
    interval: float,
    timeout: float | None = None,
    request_timeout: float = 10.0,
    verify: bool = True,
    out: TextIO | None = None,
) -> str:
    out = out or sys.stderr

    def route_back(reason: str) -> str:
        print(f"[canary] {reason}: routing traffic back (share {ROLLBACK_SHARE})", file=out, flush=True)
        try:
            set_traffic(cfg, cluster, ROLLBACK_STATE, ROLLBACK_SHARE, out=out)
        except GateError as exc:
            return f"route-back FAILED ({exc}); move traffic off {cluster} by hand"
        return f"traffic routed back: {cluster} share {ROLLBACK_SHARE}%, state {ROLLBACK_STATE}"

    print(f"[canary] moving {canary_share}% of traffic to {cluster}", file=out, flush=True)
    try:
        set_traffic(cfg, cluster, CONTROL_STATE["serving"], canary_share, out=out)
    except GateError as exc:
        raise GateError(f"could not move {canary_share}% to {cluster}: {exc}; {route_back('shift failed')}") from None

    try:
        summary = watch_slo(
            prometheus_url,
            objectives,
            window=window,
            interval=interval,
            timeout=timeout,
            request_timeout=request_timeout,
            verify=verify,
            name="canary",
            out=out,
        )
    except SloBreach as exc:
        back = route_back("SLO breached")
        raise GateError(f"SLO breached at {canary_share}% on {cluster}: {exc}; {back}") from None
    except GateError as exc:
        back = route_back("SLO watch failed")
        raise GateError(f"SLO watch failed at {canary_share}% on {cluster}: {exc}; {back}") from None
    except BaseException:  # Ctrl-C, SIGTERM-as-exception, bugs: never leave the canary running
        back = route_back("interrupted")
        print(f"[canary] {back}", file=out, flush=True)
        raise

    try:
        set_traffic(cfg, cluster, CONTROL_STATE["serving"], final_share, out=out)
    except GateError as exc:
        raise GateError(
            f"SLO held at {canary_share}% but setting the final share {final_share}% failed: {exc}; "
            f"{cluster} may still carry {canary_share}%"
        ) from None
    return f"{cluster}: SLO {summary}; share now {final_share}%"


def run(args) -> str:
    """Users are back once the canary has passed: only then is the cutover record
    (what the maintenance changed) deleted, which ends the transition."""
    result = run_canary(
        config_from_args(args),
        args.cluster,
        canary_share=args.canary_share,
        final_share=args.final_share,
        prometheus_url=args.prometheus_url,
        objectives=args.query,
        window=args.window,
        interval=args.interval,
        timeout=args.timeout,
        request_timeout=args.request_timeout,
        verify=not args.insecure,
    )
    cleared = cutover_log.clear(args)
    return result + (f"; cutover record cleared ({cleared} entries)" if args.clear_records else "")


def _canary_share(text: str) -> int:
    value = parse_share(text)
    if value == 0:
        raise argparse.ArgumentTypeError("a canary share of 0 sends no traffic: use 1-100")
    return value


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "canary",
        help="shift a share of traffic, watch SLOs for a window; route back on breach",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--cluster", required=True, help="the upgraded cluster, as the traffic control knows it")
    p.add_argument("--canary-share", required=True, type=_canary_share, help="percent of traffic during the watch (1-100)")
    p.add_argument(
        "--final-share",
        required=True,
        type=parse_share,
        help="percent to leave on the cluster when the SLO held (the normal split, e.g. 50); no default on purpose",
    )
    add_prometheus_arguments(p)
    add_slo_arguments(p, window=300)
    p.add_argument("--interval", type=float, default=15, help="seconds between SLO looks (default 15)")
    p.add_argument("--timeout", type=float, default=None, help="cap on the watch's wall time (default: window + 120 s)")
    add_traffic_arguments(p)
    cutover_log.add_record_arguments(p, clear=True)
    p.set_defaults(func=run)
