"""Reading a `Pulumi.<stack>.yaml`-shaped file for the offline plan, refusing
what YAML would silently accept: a duplicated key (PyYAML keeps the last one),
an alias bomb (anchors expanding to gigabytes when the config is encoded), a
file that is not UTF-8 text, not a mapping, unreadable or oversized.

Every refusal is a Problem naming the file and the fix (exit 2 in the CLI).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from kubehop.problems import Problem, Problems

MAX_BYTES = 1 << 20  # a stack file is a few KiB; 1 MiB is generous
MAX_NODES = 100_000  # values after aliases are expanded


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicated mapping keys (YAML 1.2 §3.2.1.1
    requires keys to be unique; PyYAML silently keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                raise ConstructorError(None, None, "a mapping key is not a plain value", key_node.start_mark) from None
            if duplicate:
                raise ConstructorError(None, None, f"duplicated key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _problem(path: Path, message: str, fix: str) -> Problems:
    return Problems([Problem(key=f"--config {path}", message=message, fix=fix, secret=True)])


def _count(value: Any, budget: list[int]) -> None:
    """Walk the loaded value as the encoder would, aliases expanded, within a budget."""
    budget[0] -= 1
    if budget[0] < 0:
        raise OverflowError
    if isinstance(value, dict):
        for k, v in value.items():
            _count(k, budget)
            _count(v, budget)
    elif isinstance(value, list):
        for v in value:
            _count(v, budget)


def read(path: Path) -> dict:
    """The file's top-level mapping; Problems for anything else."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise IsADirectoryError
        if size > MAX_BYTES:
            raise _problem(path, f"is {size} bytes, over the {MAX_BYTES}-byte limit for a stack file",
                           "pass the stack's Pulumi.<stack>.yaml")
        data = path.read_bytes()
    except FileNotFoundError:
        raise _problem(path, "does not exist", "pass a Pulumi.<stack>.yaml-shaped file (or omit --config)") from None
    except IsADirectoryError:
        raise _problem(path, "is a directory", "pass the stack file inside it, e.g. DIR/Pulumi.<stack>.yaml") from None
    except PermissionError:
        raise _problem(path, "cannot be read (permission denied)", "make it readable by this user") from None
    except OSError as exc:
        raise _problem(path, f"cannot be read ({exc.strerror or exc})", "pass a readable file") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _problem(path, f"is not UTF-8 text (byte {exc.start})", "save the file as UTF-8") from None
    try:
        loaded = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        what = getattr(exc, "problem", None) or "invalid YAML"
        raise _problem(path, f"is not valid YAML{at}: {what}", "correct the file (each key once, valid YAML syntax)") from None
    try:
        _count(loaded, [MAX_NODES])
    except (OverflowError, RecursionError):
        raise _problem(path, f"expands to more than {MAX_NODES} values (YAML aliases)",
                       "write the values out instead of nesting anchors and aliases") from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise _problem(path, f"holds a YAML {type(loaded).__name__}, not a mapping", "use a file shaped like Pulumi.<stack>.yaml (a `config:` mapping)")
    return loaded
