"""Fixtures of the lowering tests (models and tool checks are in handwritten.py)."""

import pytest


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory):
    """Runtime objects and the QEMU plugin, built once for the session."""
    return tmp_path_factory.mktemp("build")
