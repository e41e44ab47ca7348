"""Shared pytest fixtures and paths."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MODELS = REPO / "models"
DEEPLOY = REPO.parent / "shared" / "data" / "deeploy"


@pytest.fixture
def deeploy_dir():
    """The Deeploy integer test vectors, used in place (their licence forbids copying them)."""
    if not DEEPLOY.is_dir():
        pytest.skip(f"Deeploy test vectors not found at {DEEPLOY} (they are not part of the repo)")
    return DEEPLOY


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory):
    """Runtime objects and the QEMU plugin, built once per test session."""
    return tmp_path_factory.mktemp("build")
