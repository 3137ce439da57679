"""Shared fixtures: the tiny generated test data, the real data in ../shared (skipped when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SHARED = Path(os.environ.get("RS_VIT_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """tests/data: tiny fixtures written by tests/data/make_fixtures.py."""
    return DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real scenes and a real model); tests using it skip when it is absent."""
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED} (set RS_VIT_SHARED_DATA to its path)")
    return SHARED


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """sample_data/: the bundled synthetic scene used by the demo."""
    return ROOT / "sample_data"
