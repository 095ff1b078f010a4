"""Polling shared by every gate: bounded attempts, progress lines, fail closed."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, TextIO


class GateError(Exception):
    """A gate could not pass: the message says why, for the operator."""


@dataclass(frozen=True)
class Verdict:
    """One look at the world: passed or not, and a one-line reason."""

    ok: bool
    detail: str
    final: bool = False
    """A failure no later look can mend (a failed refresh): stop polling at once."""


def poll(
    name: str,
    check: Callable[[], Verdict],
    *,
    timeout: float,
    interval: float,
    out: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Verdict:
    """Call `check` until it passes or `timeout` seconds pass.

    An exception from `check` counts as a failed look (fail closed) and is
    reported in the progress line. Raises GateError with the last reason.
    """
    out = out if out is not None else sys.stderr  # looked up per call: tests may swap stderr
    deadline = clock() + timeout
    attempt = 0
    while True:
        attempt += 1
        try:
            verdict = check()
        except Exception as exc:  # fail closed: unreachable is not healthy
            verdict = Verdict(False, f"{type(exc).__name__}: {exc}")
        status = "ok" if verdict.ok else "waiting"
        print(f"[{name}] attempt {attempt}: {status}: {verdict.detail}", file=out, flush=True)
        if verdict.ok:
            return verdict
        if verdict.final:
            raise GateError(f"{name} failed: {verdict.detail}")
        remaining = deadline - clock()
        if remaining <= 0:
            raise GateError(f"{name} did not pass within {timeout:g}s: {verdict.detail}")
        sleep(min(interval, remaining))


def add_poll_arguments(parser, *, timeout: float = 600, interval: float = 10) -> None:
    """The bound every gate takes: --timeout and --interval in seconds."""
    parser.add_argument("--timeout", type=float, default=timeout, help="give up after this many seconds")
    parser.add_argument("--interval", type=float, default=interval, help="seconds between looks")
