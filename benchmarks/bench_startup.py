"""The fixed cost of a command (start-up and tail): CPU seconds of fresh `python -m pipeline` processes.

    python benchmarks/bench_startup.py [--rounds 5] [--base DIR] [--only one,idle,...]

Scenarios (each a fresh process, numba's cache warm; CPU = user + sys of the process, as /usr/bin/time):

* **one**: `run` on one CC document, a fresh output folder; **seeds**: the five seed articles; **cc**: CC
  `docs.jsonl` (697 documents, 3.3 MB);
* **idle** / **idlec**: `run` on the seeds again, nothing new (an hourly cron run), with the default config /
  with `-c configs/default.yaml` (a config file's stages are built to check it);
* **check**, **stages**, **help**, **explain**: the commands users type.

With ``--base DIR`` (a worktree of an earlier commit, e.g. ``git worktree add /tmp/base main``) each scenario
runs in both trees, alternated (order flipped every round), so that a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CLEANCORPUS_SHARED", REPO.parent / "shared"))
CC = SHARED / "corpora" / "cc-2019-30-dolma" / "docs.jsonl"
SEEDS = SHARED / "seeds"
SCENARIOS = ("one", "seeds", "cc", "idle", "idlec", "check", "stages", "help", "explain")


def command(name: str, work: Path, tree: str) -> tuple[list[str], Path | None]:
    """The command's arguments after `python -m pipeline`, and the output folder to remove first (if any)."""
    out = work / f"{name}-{tree}"
    idle = ["run", str(SEEDS), "-o", str(work / f"idle-{tree}"), "-q"]
    return {
        "one": (["run", str(work / "one.jsonl"), "-o", str(out), "-q"], out),
        "seeds": (["run", str(SEEDS), "-o", str(out), "-q"], out),
        "cc": (["run", str(CC), "-o", str(out), "-q"], out),
        "idle": (idle, None),
        "idlec": (["run", str(SEEDS), "-o", str(work / f"idlec-{tree}"), "-q", "-c", "configs/default.yaml"], None),
        "check": (["check", "configs/default.yaml"], None),
        "stages": (["stages"], None),
        "help": (["--help"], None),
        "explain": (["explain", sorted(p.name for p in SEEDS.iterdir())[0], "-o", str(work / f"idle-{tree}")], None),
    }[name]


def cpu_seconds(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU (user + sys) seconds of `python -m pipeline ARGS` run in ``cwd`` (its package first)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # (.pyc files count)
    env["PYTHONPATH"] = str(cwd)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        said = proc.stderr.read().decode()[-500:] if proc.stderr else ""
        raise RuntimeError(f"{' '.join(args)} in {cwd} failed ({status}): {said}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--base", type=Path, help="a worktree of an earlier commit, run alternately with this one")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    args = parser.parse_args()
    names = args.only.split(",")
    trees = {"this": REPO, **({"base": args.base.resolve()} if args.base else {})}
    with tempfile.TemporaryDirectory(prefix="bench_startup-") as tmp:
        work = Path(tmp)
        with open(CC, encoding="utf-8") as f:
            (work / "one.jsonl").write_text(f.readline(), encoding="utf-8")
        for tree, root in trees.items():  # the folders the no-op runs find unchanged (after the 3 s mtime rule)
            for name in ("idle", "idlec"):
                if name in names or (name == "idle" and "explain" in names):
                    cpu_seconds(command(name, work, tree)[0], root)
            time.sleep(3.5)
        cpu: dict[tuple[str, str], list[float]] = {(n, t): [] for n in names for t in trees}
        for r in range(args.rounds):
            order = list(trees) if r % 2 == 0 else list(trees)[::-1]
            for name in names:
                for tree in order:
                    cmd, fresh = command(name, work, tree)
                    if fresh is not None:
                        shutil.rmtree(fresh, ignore_errors=True)
                    cpu[name, tree].append(cpu_seconds(cmd, trees[tree])[1])
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name in names:
        cells = []
        for tree in trees:
            values = sorted(cpu[name, tree])
            cells.append(f"{tree} {statistics.median(values):.2f} ({' '.join(f'{v:.2f}' for v in values)})")
        print(f"{name:8} CPU s, median (all): " + "  |  ".join(cells))


if __name__ == "__main__":
    main()
