"""`python -m kubehop plan --stack prod-b [--to 1.29] [--config FILE] [--outputs FILE] [--record FILE] [--format text|json|mermaid|html] [--strict]`

Prints every stage (one `pulumi up` each) of bringing the stack's cluster to
the target version, with the steps each stage changes. Runs offline: no
Pulumi CLI, cloud or cluster is contacted. Exit 0; 2 with the problems on
stderr (and nothing on stdout) for invalid config, arguments or an impossible
target; 3 with --strict when the plan carries warnings.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

from kubehop import config_file, cutover_record
from kubehop.plan import engine, html, mermaid, render
from kubehop.plan.stages import PlanError, build, read_outputs, read_stack_file
from kubehop.problems import Problem, Problems

EXIT_WARNINGS = 3


def _json(plan: dict) -> str:
    return json.dumps(plan, indent=2, sort_keys=False)


FORMATS = {"text": render.render, "json": _json, "mermaid": mermaid.render, "html": html.render}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit 2 with a fix, as for bad config
        self.print_usage(sys.stderr)
        print(f"kubehop plan: {message}. Fix: see `python -m kubehop plan --help`", file=sys.stderr)
        raise SystemExit(2)


def _non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m kubehop plan", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stack", required=True, type=_non_empty, help="stack name; its config is Pulumi.<stack>.yaml unless --config is given")
    p.add_argument("--to", type=_non_empty, help="target Kubernetes version (a minor like 1.29 or a patch); default: the config's")
    p.add_argument("--config", type=lambda t: Path(_non_empty(t)), help="a file shaped like Pulumi.<stack>.yaml")
    p.add_argument("--worker-policy", type=_non_empty, help="each-hop or efficient (overrides the config)")
    p.add_argument("--sibling-state", default="serving", choices=["serving", "maintaining"],
                   help="the sibling cluster's traffic state to assume (offline it cannot be read)")
    p.add_argument("--outputs", type=lambda t: Path(_non_empty(t)), metavar="FILE",
                   help="plan from the stack's recorded state: the JSON of `pulumi stack output --json --show-secrets` "
                        "(also after a failed run; default: the stack has no state yet and the plan starts with the adopt stage)")
    p.add_argument("--record", type=lambda t: Path(_non_empty(t)), metavar="FILE",
                   help="plan from the cluster's cutover record: the JSON of `aws ssm get-parameters-by-path "
                        "--path /kubehop/<cluster>/cutover --recursive` (after a maintaining run that failed part way, "
                        "with traffic.state serving the first stage undoes it)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON (same as --format json)")
    p.add_argument("--format", choices=sorted(FORMATS), default=None,
                   help="text (default), json, mermaid (each stage's DAG as Markdown with Mermaid flowcharts) "
                        "or html (one self-contained page)")
    p.add_argument("--strict", action="store_true", help=f"exit {EXIT_WARNINGS} when the plan carries warnings")
    return p


def _json_file(flag: str, path: Path, writer: str):
    """A JSON file named by an argument; unreadable or not JSON: exit 2 naming the argument and its writer."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PlanError([Problem(key=f"{flag} {path}", secret=True, message=f"cannot be read as JSON ({type(exc).__name__})",
                                 fix=f"pass the file `{writer} > FILE` wrote")]) from None


def _outputs(path: Path | None) -> dict | None:
    if path is None:
        return None
    value = _json_file("--outputs", path, "pulumi stack output --json --show-secrets")
    if not isinstance(value, dict):
        raise PlanError([Problem(key=f"--outputs {path}", value=type(value).__name__, message="is not a JSON object of stack outputs",
                                 fix="pass the file `pulumi stack output --json` wrote")])
    return value


def _record(path: Path | None) -> dict[str, str] | None:
    """The cutover record file as parameter name -> value (checked by the plan against the cluster's path)."""
    if path is None:
        return None
    return cutover_record.from_cli_json(_json_file(
        "--record", path, "aws ssm get-parameters-by-path --path /kubehop/<cluster>/cutover --recursive"))


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    path = args.config or engine.PROJECT_DIR / f"Pulumi.{args.stack}.yaml"
    captured = io.StringIO()
    try:
        stack_file = read_stack_file(config_file.read(path))
        recorded = read_outputs(_outputs(args.outputs)) if args.outputs else None
        cutover = _record(args.record)
        # the Pulumi runtime may log; keep stdout for the plan alone
        with contextlib.redirect_stdout(captured):
            plan = build(stack_file, stack=args.stack, to=args.to, policy=args.worker_policy,
                         sibling_state=args.sibling_state, recorded=recorded, cutover=cutover)
    except Problems as exc:
        print("kubehop plan: cannot plan:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    fmt = args.format or ("json" if args.json else "text")
    if args.json and fmt != "json":
        print(f"kubehop plan: --json and --format {fmt} disagree. Fix: pass one of them", file=sys.stderr)
        return 2
    print(FORMATS[fmt](plan))
    if args.strict and plan["warnings"]:
        print(f"kubehop plan: --strict: {len(plan['warnings'])} warning(s); fix them or drop --strict", file=sys.stderr)
        return EXIT_WARNINGS
    return 0
