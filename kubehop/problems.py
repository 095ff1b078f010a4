"""The one shape of every refusal: config, hop and plan errors alike.

A problem names the key (or argument) to change, the value found, what is
wrong and the fix. A value under a secret, unknown or misspelled key is never
shown: `secret=True` prints "(not shown)" instead.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

HIDDEN = "(not shown)"


@dataclass(frozen=True)
class Problem:
    key: str
    message: str
    fix: str
    value: Any = None
    secret: bool = False

    @property
    def shown(self) -> str:
        if self.secret:
            return HIDDEN
        if self.value is None:
            return "(missing)"
        return repr(self.value) if isinstance(self.value, str) else json.dumps(self.value, default=str)

    def __str__(self) -> str:
        return f"{self.key}: {self.message} (got {self.shown}). Fix: {self.fix}"

    def as_dict(self) -> dict:
        return {"key": self.key, "value": None if self.secret else self.value, "message": self.message, "fix": self.fix}


class Problems(Exception):
    """One or more problems; nothing may be registered or planned."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
