from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLEANCORPUS_SHARED", REPO.parent / "shared"))
SEEDS = SHARED / "seeds"
CORPORA = SHARED / "corpora"


def seed_text(prefix: str) -> str:
    """The seed article whose file name starts with ``prefix`` (e.g. "003")."""
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    return path.read_text(encoding="utf-8")


@pytest.fixture(autouse=True, scope="session")
def _shared_data_present() -> None:
    if not SEEDS.is_dir():
        pytest.exit(f"shared data not found at {SHARED} (set CLEANCORPUS_SHARED)", returncode=2)
