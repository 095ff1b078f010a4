"""Control-plane config keys of issue 8: the etcd snapshot's S3 copy and its KMS key."""
from __future__ import annotations

import copy

import pytest

from tests.plan_helpers import prod_b
from tests.kubehop.test_config import load, problems


def etcd(c: dict) -> dict:
    return c["kubehop:controlPlane"]["etcd"]


@pytest.mark.parametrize("key_id", [
    "1234abcd-12ab-34cd-56ef-1234567890ab", "mrk-1234abcd12ab34cd56ef1234567890ab", "alias/etcd-backups",
    "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "arn:aws:kms:us-west-2:111122223333:alias/etcd-backups"])
def test_kms_key_forms_are_accepted(key_id: str):
    data = copy.deepcopy(prod_b())
    etcd(data["config"])["s3KmsKeyId"] = key_id
    assert load(data).control_plane.etcd.s3_kms_key_id == key_id


@pytest.mark.parametrize(("mutate", "key", "value"), [
    (lambda c: etcd(c).update(s3KmsKeyId="my key; rm -rf /"), "kubehop:controlPlane.etcd.s3KmsKeyId", "my key; rm -rf /"),
    (lambda c: (etcd(c).pop("s3Uri"), etcd(c).update(s3KmsKeyId="alias/etcd-backups")), "kubehop:controlPlane.etcd", None),
    (lambda c: etcd(c).update(s3Uri="s3://dv-prod-b-etcd-backups/a b"), "kubehop:controlPlane.etcd.s3Uri", None),
], ids=["bad-kms-key", "kms-without-s3", "s3-prefix-with-space"])
def test_bad_snapshot_keys_name_key_value_and_fix(mutate, key: str, value: str | None):
    found = [p for p in problems(mutate) if p.key == key or p.key.startswith(key)]
    assert found and found[0].fix, [str(p) for p in problems(mutate)]
    if value is not None:
        assert value in str(found[0])
