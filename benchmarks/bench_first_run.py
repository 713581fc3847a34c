"""The first run after installing: numba compiles every kernel (`cache=True`) before the run can work.

Each round copies the tree (``--tree``, and ``--base`` if given: they alternate) without any ``__pycache__``
(numba's ``.nbi``/``.nbc``, the stages' first-use caches, ``.pyc``: what a fresh install has not made yet) into
a temporary folder and times ``python -m pipeline run samples/ -o OUT -q`` there (the README's quickstart), then
a second, warm run. The trees' own caches are not touched. Prints wall and user+sys (the run's and its child
processes') per run, the load average before each, and whether the outputs match the first tree's.

    python benchmarks/bench_first_run.py --rounds 2 --base /tmp/base-worktree
"""

from __future__ import annotations

import argparse
import filecmp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cold_copy(tree: Path, into: Path) -> Path:
    """``tree``'s package and samples, without caches, in ``into``."""
    ignore = shutil.ignore_patterns("__pycache__", ".git", ".*_cache", "output")
    for name in ("pipeline", "samples"):
        shutil.copytree(tree / name, into / name, ignore=ignore)
    return into


def timed_run(tree: Path, out: Path) -> tuple[float, float]:
    """Wall and CPU (user+sys, with the children it waited for) seconds of one quickstart run in ``tree``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    # (numba's dispatchers: the compiled kernels module's background build after the first run would run beside
    # the next runs timed here, and in a copy that is deleted)
    env["CLEANCORPUS_AOT"] = "0"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "samples/", "-o", str(out), "-q"],
        cwd=tree,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def same_outputs(a: Path, b: Path) -> bool:
    names = sorted(p.name for p in a.iterdir() if p.suffix in (".jsonl", ".txt"))
    if names != sorted(p.name for p in b.iterdir() if p.suffix in (".jsonl", ".txt")):
        return False
    return all(filecmp.cmp(a / n, b / n, shallow=False) for n in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=REPO, help="the tree to time (default: this one)")
    parser.add_argument("--base", type=Path, help="a tree to alternate with (e.g. a worktree of the base commit)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    trees = [("tree", args.tree.resolve())] + ([("base", args.base.resolve())] if args.base else [])
    with tempfile.TemporaryDirectory(prefix="first-run-") as tmp:
        first_out: Path | None = None
        for r in range(1, args.rounds + 1):
            for name, tree in trees[::-1] if r % 2 == 0 else trees:  # (alternating which goes first)
                work = Path(tmp) / f"{name}-{r}"
                copy = cold_copy(tree, work / "tree")
                load = os.getloadavg()[0]
                cold = timed_run(copy, work / "out-cold")
                warm = timed_run(copy, work / "out-warm")
                if first_out is None:  # (what the others are compared with; the round's folder goes)
                    first_out = Path(shutil.copytree(work / "out-cold", Path(tmp) / "first-out"))
                same = same_outputs(first_out, work / "out-cold") and same_outputs(first_out, work / "out-warm")
                print(
                    f"round {r} {name}: cold {cold[0]:.2f} s wall, {cold[1]:.2f} s CPU; warm {warm[0]:.2f} s wall,"
                    f" {warm[1]:.2f} s CPU; load {load:.2f}; outputs {'same' if same else 'DIFFER'}",
                    flush=True,
                )
                shutil.rmtree(work)


if __name__ == "__main__":
    main()
