"""Fixtures the control-plane script tests share."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.scripts.test_control_plane_scripts import Rig


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    """A fake master: a KUBEHOP_ROOT tree, the stand-ins' state and a PATH."""
    return Rig(tmp_path)
