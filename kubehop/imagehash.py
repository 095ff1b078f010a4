"""Content hashes and variable contracts of kubehop's Packer templates.

Why: the runbook (3.2) warns that AMI names must not collide, and a hop must
be able to tell "this exact image already exists" from "the image must be
rebuilt". kubehop names every AMI ``<prefix>-<kubernetes_version>-<hash>``
where the hash covers the template and every file its build uploads or runs.
Any edit to a template, a script or node-settings.yaml therefore produces a
new name (and a new build), while an unchanged tree reproduces the old name,
so an existing image can be found by name instead of rebuilt.

Files alone do not capture the versions, which arrive as Packer variables:
two builds of the same Kubernetes patch with different containerd or CNI
versions would share a name. Pass those ``variables`` to `content_hash` and
they are folded in (only the ones listed in `IMAGE_INPUTS`; region, subnet,
tags and the like do not change what is in the image). The Spark hash
includes the worker hash, and with `worker_variables` the worker's versions.

Plain Python: no Pulumi, no network; python-hcl2 parses the templates.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

PACKER_DIR = Path(__file__).resolve().parent.parent / "packer"
"""The packer/ directory of this checkout."""

ROLES = ("worker", "spark")

HASH_LENGTH = 12

_ROLE_FILES: dict[str, tuple[str, ...]] = {
    # Relative to the packer/ directory; files/ is added as a whole below.
    "worker": (
        "worker.pkr.hcl",
        "scripts/lib.sh",
        "scripts/base.sh",
        "scripts/containerd.sh",
        "scripts/kubernetes.sh",
        "scripts/cleanup.sh",
    ),
    "spark": (
        "spark.pkr.hcl",
        "scripts/lib.sh",
        "scripts/spark.sh",
        "scripts/cleanup.sh",
    ),
}

IMAGE_INPUTS: dict[str, frozenset[str]] = {
    # Template variables whose values change what ends up in the image.
    "worker": frozenset(
        {
            "kubernetes_version",
            "kubernetes_minor",
            "containerd_version",
            "pause_image",
            "cni_plugins_version",
            "cni_plugins_sha256",
            "source_ami_id",
            "source_ami_filter_name",
            "source_ami_owner",
        }
    ),
    "spark": frozenset(
        {
            # The worker AMI id stands for everything the worker build put
            # in: a rebuilt worker image gives a new Spark name too.
            "worker_ami_id",
            "kubernetes_version",
            "jdk_package",
            "hadoop_version",
            "hadoop_sha512",
        }
    ),
}


@dataclass(frozen=True)
class Variable:
    """One `variable` block of a template, as far as callers need it."""

    name: str
    type: str
    required: bool
    description: str


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown image role {role!r}; expected one of {', '.join(ROLES)}")


def _root(root: str | Path | None) -> Path:
    return PACKER_DIR if root is None else Path(root)


def template_path(role: str, root: str | Path | None = None) -> Path:
    """The Packer template that builds `role` ("worker" or "spark")."""
    _check_role(role)
    return _root(root) / f"{role}.pkr.hcl"


def role_files(role: str, root: str | Path | None = None) -> list[Path]:
    """Every file whose bytes go into `role`'s own hash, sorted by relative path.

    For the worker that includes everything in packer/files/ (the settings
    file and its reader), skipping editor/Python leftovers so that running
    the tests does not rename AMIs. The spark role lists only its own files;
    the worker's hash is folded into the spark hash by `content_hash`.
    """
    _check_role(role)
    base = _root(root)
    rel = set(_ROLE_FILES[role])
    if role == "worker":
        files_dir = base / "files"
        if not files_dir.is_dir():
            raise FileNotFoundError(f"{files_dir} is missing")
        for path in files_dir.rglob("*"):
            parts = path.relative_to(base).parts
            if not path.is_file() or any(p.startswith(".") or p == "__pycache__" for p in parts):
                continue
            if path.suffix in {".pyc", ".pyo", ".swp"} or path.name.endswith("~"):
                continue
            rel.add(path.relative_to(base).as_posix())
    paths = [base / r for r in sorted(rel)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"image inputs missing: {', '.join(missing)}")
    return paths


def _files_digest(role: str, base: Path):  # -> hashlib sha256 object
    digest = hashlib.sha256()
    digest.update(f"kubehop-image:{role}\0".encode())
    for path in role_files(role, base):
        data = path.read_bytes()
        rel = path.relative_to(base).as_posix()
        # Length-prefixed so that moving bytes between files changes the hash.
        digest.update(f"{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest


def _variables_json(role: str, variables: Mapping[str, object]) -> bytes:
    chosen: dict[str, str] = {}
    for key in sorted(variables):
        if key not in IMAGE_INPUTS[role]:
            continue
        value = variables[key]
        if not isinstance(value, (str, int, float, bool)):
            # A pulumi.Output here would hash as its placeholder text.
            raise TypeError(
                f"content_hash({role!r}): variable {key!r} must be a plain value, got {type(value).__name__}"
            )
        chosen[key] = str(value)
    return json.dumps(chosen, sort_keys=True).encode()


def content_hash(
    role: str,
    root: str | Path | None = None,
    *,
    variables: Mapping[str, object] | None = None,
    worker_variables: Mapping[str, object] | None = None,
) -> str:
    """12 hex digits of sha256 over everything that defines `role`'s image.

    - worker: worker.pkr.hcl, files/*, scripts/{lib,base,containerd,kubernetes,cleanup}.sh
    - spark:  spark.pkr.hcl, scripts/{lib,spark,cleanup}.sh, plus the
      worker hash (so a worker-side edit also renames the Spark image)

    Files are hashed by sorted relative path and bytes, so the result does not
    depend on the checkout location, mtimes or permissions. `root` replaces
    the packer/ directory (tests hash an edited copy).

    `variables`, if given, are the Packer variable values of this build;
    those named in IMAGE_INPUTS[role] are folded in (as strings), the rest
    are ignored. Without them only the files count, and a containerd or CNI
    version change alone would not rename the image. For spark,
    `worker_variables` are the worker build's variables, folded into the
    worker part (known at preview time, unlike the worker AMI id).
    Values must be plain (str/int/float/bool): TypeError otherwise.
    """
    _check_role(role)
    if worker_variables is not None and role != "spark":
        raise ValueError("worker_variables only applies to the spark role")
    base = _root(root)
    digest = _files_digest(role, base)
    if role == "spark":
        worker = content_hash("worker", base, variables=worker_variables)
        digest.update(f"worker:{worker}\0".encode())
    if variables is not None:
        digest.update(b"variables\0" + _variables_json(role, variables))
    return digest.hexdigest()[:HASH_LENGTH]


def _load_template(role: str, root: str | Path | None) -> dict:
    """The parsed template; parsed once per file content (each plan stage asks again)."""
    path = template_path(role, root)
    stat = path.stat()
    return copy.deepcopy(_parsed(str(path.resolve()), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=32)
def _parsed(path: str, mtime_ns: int, size: int) -> dict:
    import hcl2  # python-hcl2 >= 8: strip quotes, no block markers

    options = hcl2.SerializationOptions(
        strip_string_quotes=True, explicit_blocks=False, with_comments=False
    )
    with open(path, encoding="utf-8") as handle:
        return hcl2.load(handle, serialization_options=options)


def _unwrap_type(value: object) -> str:
    text = str(value)
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    return text


def declared_variables(role: str, root: str | Path | None = None) -> dict[str, Variable]:
    """The `variable` blocks of `role`'s template, parsed with python-hcl2.

    Why: the Pulumi side must pass every required variable (a missing one
    makes `packer build` stop and ask), and must not invent names the
    template does not declare.
    """
    parsed = _load_template(role, root)
    result: dict[str, Variable] = {}
    for block in parsed.get("variable", []):
        for name, body in block.items():
            if name in result:
                raise ValueError(f"{template_path(role, root)}: variable {name!r} declared twice")
            result[name] = Variable(
                name=name,
                type=_unwrap_type(body.get("type", "any")),
                required="default" not in body,
                description=str(body.get("description", "")),
            )
    return result


def required_variables(role: str, root: str | Path | None = None) -> set[str]:
    """Names of `role`'s template variables that have no default.

    Why: these are exactly the values a build cannot run without (versions,
    content hash, region, manifest path, and for Spark the worker AMI id), so
    the caller can check its variable file against the template before
    spending an EC2 instance on a build that Packer would reject.
    """
    return {name for name, var in declared_variables(role, root).items() if var.required}
