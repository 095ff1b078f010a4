"""`python -m kubehop plan ...` and `python -m kubehop gate ...`."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: python -m kubehop {plan,gate} ...", file=sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "gate":
        from kubehop.gates.cli import main as gate_main

        return gate_main(rest)
    if command == "plan":
        from kubehop.plan.cli import main as plan_main

        return plan_main(rest)
    print(f"unknown command {command!r}: use 'plan' or 'gate'", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
