from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# numba's dispatchers in the tests and the commands they run (a compiled kernels module beside the package would
# otherwise be used, and a run would start building one in the background): test_aot_kernels.py turns it on
os.environ["CLEANCORPUS_AOT"] = "0"
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


def run_cli(
    *args: str,
    cwd: Path | None = None,
    file_size_limit: int | None = None,
    env: dict[str, str] | None = None,
    new_session: bool = False,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """``python -m pipeline ARGS`` in a child (in a process group of its own with ``new_session``);
    ``file_size_limit``: no file it writes may grow beyond so many bytes (RLIMIT_FSIZE, with SIGXFSZ ignored,
    so that the write fails with EFBIG as on a full disk)."""

    def limited() -> None:
        if file_size_limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # (an ignored signal stays ignored across exec)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    full_env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        preexec_fn=limited,
        start_new_session=new_session,
    )
