"""One module per Helm addon (chart, pins, naming, values, its check: everything kubehop
knows about it); SPECS lists them in dependency order.

Adding an addon is adding a module here: every module of this package that
defines `SPEC` is an addon (base.py and moves.py hold no addon). Order:
dependencies first (`depends_on`), ties by name.
"""
import importlib
import pkgutil

from kubehop.addons.base import AddonSpec

_NOT_ADDONS = {"base", "moves"}


def _discover() -> list[AddonSpec]:
    specs = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in _NOT_ADDONS or info.name.startswith("_"):
            continue
        spec = getattr(importlib.import_module(f"{__name__}.{info.name}"), "SPEC", None)
        if isinstance(spec, AddonSpec):
            specs.append(spec)
    return specs


def _in_dependency_order(specs: list[AddonSpec]) -> list[AddonSpec]:
    by_name = {s.name: s for s in specs}
    unknown = sorted({d for s in specs for d in s.depends_on} - set(by_name))
    if unknown:
        raise ImportError(f"addon dependencies name no addon module: {', '.join(unknown)}")
    done: list[AddonSpec] = []
    while len(done) < len(specs):
        ready = sorted((s for s in specs if s not in done and all(by_name[d] in done for d in s.depends_on)),
                       key=lambda s: s.name)
        if not ready:
            raise ImportError("addon dependencies form a cycle: " + ", ".join(s.name for s in specs if s not in done))
        done.append(ready[0])
    return done


SPECS: dict[str, AddonSpec] = {s.name: s for s in _in_dependency_order(_discover())}
