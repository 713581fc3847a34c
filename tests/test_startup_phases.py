"""benchmarks/startup_phases.py: a fresh run's CPU by phase (the accounting of session 20's s20-start)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_startup_phases_accounts_a_fresh_runs_phases(tmp_path: Path) -> None:
    doc = tmp_path / "one.jsonl"
    doc.write_text('{"id": "a", "text": "A first line of text.\\n\\nAnd a second paragraph here."}\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "startup_phases.py"), "--rounds", "1", "--input", str(doc)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    rows = {line[:46].strip(): line[46:].split() for line in done.stdout.splitlines()[2:]}
    for phase in ("TOTAL", "interpreter", "import config", "default_config (stage imports)", "build_stages"):
        assert phase in rows and float(rows[phase][0]) > 0, done.stdout
    assert any(name.startswith("kernels ") for name in rows), done.stdout  # (each cached kernel's load, timed)
    parts = sum(float(v[0]) for k, v in rows.items() if k != "TOTAL")
    assert parts <= float(rows["TOTAL"][0]) * 1.01  # exclusive times: nothing counted twice
