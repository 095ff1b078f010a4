"""The spark AMI's name carries the worker AMI it is built on, the same in the
Packer template and in components/node_image.py (which looks the AMI up by it)."""
from __future__ import annotations

import re

import pytest

from components.node_image import ami_name
from kubehop.catalog import Version
from tests.packer.test_packer import load_template, source_block

VALUES = {"ami_name_prefix": None, "kubernetes_version": "1.27.16", "content_hash": "0123abcd4567",
          "worker_ami_id": "ami-0a1b2c3d4e5f60718"}


def rendered(role: str) -> str:
    name = source_block(role)["ami_name"]
    if name == "${local.ami_name}":
        (local,) = [b for b in load_template(role)["locals"] if "ami_name" in b]
        name = local["ami_name"]
    values = dict(VALUES, ami_name_prefix=f"kubehop-{role}")
    return re.sub(r"\$\{var\.([a-z_]+)\}", lambda m: values[m.group(1)], name)


@pytest.mark.parametrize("role", ["worker", "spark"])
def test_the_program_names_the_ami_as_the_template_does(role: str):
    base = VALUES["worker_ami_id"] if role == "spark" else None
    assert ami_name(role, Version.parse("1.27.16"), VALUES["content_hash"], base) == rendered(role)


def test_a_new_worker_ami_gives_a_new_spark_name():
    v = Version.parse("1.27.16")
    assert ami_name("spark", v, "h", "ami-0aaaaaaaaaaaaaaaa") != ami_name("spark", v, "h", "ami-0bbbbbbbbbbbbbbbb")
