"""`python -m kubehop gate NAME ...`: every module in this package with a
`register(subparsers)` function adds its gates here."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import kubehop.gates as gates_pkg
from kubehop import record
from kubehop.gates.common import GateError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kubehop gate", description=__doc__)
    sub = parser.add_subparsers(dest="gate", required=True, metavar="GATE")
    for info in sorted(pkgutil.iter_modules(gates_pkg.__path__), key=lambda m: m.name):
        if info.name in {"cli", "common"} or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"kubehop.gates.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: list[str]) -> int:
    """Run one gate; exit 0 when it passes, 1 when it fails, 2 on bad arguments."""
    args = build_parser().parse_args(argv)
    try:
        message = args.func(args)
    except GateError as exc:
        print(f"gate {args.gate} FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"gate {args.gate} passed" + (f": {message}" if message else ""), file=sys.stderr)
    # what passed, for the state the program records (kubehop/record.py); no secret is ever in argv
    print(record.line(args.gate, argv[argv.index(args.gate) + 1:]))
    return 0
