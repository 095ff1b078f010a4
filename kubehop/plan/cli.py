"""`python -m kubehop plan --stack prod-b [--to 1.29] [--config FILE] [--format text|json|mermaid|html]`

Prints every stage (one `pulumi up` each) of bringing the stack's cluster to
the target version, with the steps each stage changes. Runs offline: no
Pulumi CLI, cloud or cluster is contacted. Exit 0, or 2 with the problems on
stderr (and nothing on stdout) for invalid config or an impossible target.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

import yaml

from kubehop.plan import engine, html, mermaid, render
from kubehop.plan.stages import PlanError, build, read_outputs, read_stack_file


def _json(plan: dict) -> str:
    return json.dumps(plan, indent=2, sort_keys=False)


FORMATS = {"text": render.render, "json": _json, "mermaid": mermaid.render, "html": html.render}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit 2 with a fix, as for bad config
        self.print_usage(sys.stderr)
        print(f"kubehop plan: {message}. Fix: see `python -m kubehop plan --help`", file=sys.stderr)
        raise SystemExit(2)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m kubehop plan", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stack", required=True, help="stack name; its config is Pulumi.<stack>.yaml unless --config is given")
    p.add_argument("--to", help="target Kubernetes version (a minor like 1.29 or a patch); default: the config's")
    p.add_argument("--config", type=Path, help="a file shaped like Pulumi.<stack>.yaml")
    p.add_argument("--worker-policy", choices=None, help="each-hop or efficient (overrides the config)")
    p.add_argument("--sibling-state", default="serving", choices=["serving", "maintaining"],
                   help="the sibling cluster's traffic state to assume (offline it cannot be read)")
    p.add_argument("--outputs", type=Path, metavar="FILE",
                   help="plan from the stack's recorded state: the JSON of `pulumi stack output --json` "
                        "(default: the stack has no state yet and the plan starts with the adopt stage)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON (same as --format json)")
    p.add_argument("--format", choices=sorted(FORMATS), default=None,
                   help="text (default), json, mermaid (each stage's DAG as Markdown with Mermaid flowcharts) "
                        "or html (one self-contained page)")
    return p


def _load(path: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise PlanError([f"--config: {path} does not exist. Fix: pass a Pulumi.<stack>.yaml-shaped file"]) from None
    except yaml.YAMLError as exc:
        raise PlanError([f"--config: {path} is not valid YAML ({exc}). Fix: correct the file"]) from None


def _load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PlanError([f"--outputs: {path} does not exist. Fix: save `pulumi stack output --json > FILE` first"]) from None
    except ValueError as exc:
        raise PlanError([f"--outputs: {path} is not JSON ({exc}). Fix: pass the output of `pulumi stack output --json`"]) from None


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    path = args.config or engine.PROJECT_DIR / f"Pulumi.{args.stack}.yaml"
    captured = io.StringIO()
    try:
        stack_file = read_stack_file(_load(path))
        recorded = read_outputs(_load_json(args.outputs)) if args.outputs else None
        # the Pulumi runtime may log; keep stdout for the plan alone
        with contextlib.redirect_stdout(captured):
            plan = build(stack_file, stack=args.stack, to=args.to, policy=args.worker_policy,
                         sibling_state=args.sibling_state, recorded=recorded)
    except PlanError as exc:
        print("kubehop plan: cannot plan:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    fmt = args.format or ("json" if args.json else "text")
    if args.json and fmt != "json":
        print(f"kubehop plan: --json and --format {fmt} disagree. Fix: pass one of them", file=sys.stderr)
        return 2
    print(FORMATS[fmt](plan))
    return 0
