"""What a cron run costs on a processed archive: a run that finds nothing new, and a run with one new file.

    python benchmarks/bench_cron.py [--mb 200] [--files 20] [--workers 2] [--rounds 3] [--data DIR]

Builds an archive of ``--mb`` MB of JSONL in ``--files`` files (``bench_memory.build_input``: the shared
corpora repeated and perturbed), processes it once with ``cleancorpus run`` (default config), then times, each
``--rounds`` times, ``cleancorpus run`` as cron would start it (a fresh process, 1 worker):

* **no-op**: the same folder again, nothing new or changed;
* **one new file**: a fresh copy of the processed output folder, and a new input file of 100 CC documents.

Prints wall seconds, CPU seconds (the child processes') and peak RSS of each run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_memory import build_input  # noqa: E402

CC = REPO.parent / "shared" / "corpora" / "cc-2019-30-dolma" / "docs.jsonl"


def cleancorpus(*args: str) -> tuple[float, float, float]:
    """``cleancorpus run ARGS -q`` in a fresh process: wall s, CPU s and peak RSS MB."""
    cmd = [sys.executable, "-c", "from pipeline.cli import main; main()", "run", *args, "-q"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 3):  # 3: done, with some input quarantined
        raise RuntimeError(f"{' '.join(cmd)} failed ({status})")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def build_archive(archive: Path, mb: int, files: int) -> None:
    whole = archive / "all.jsonl.tmp"
    build_input(whole, mb)
    lines = whole.read_bytes().splitlines(keepends=True)
    whole.unlink()
    for i in range(files):
        (archive / f"part{i:03d}.jsonl").write_bytes(
            b"".join(lines[i * len(lines) // files : (i + 1) * len(lines) // files])
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200, help="archive size in MB")
    parser.add_argument("--files", type=int, default=20, help="input files the archive is split into")
    parser.add_argument("--workers", type=int, default=2, help="workers for the first, full run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, help="folder for the archive (default: a temp folder, removed)")
    parser.add_argument("--build", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        build_archive(Path(args.build[0]), int(args.build[1]), int(args.build[2]))
        return
    data = args.data or Path(tempfile.mkdtemp(prefix="cc-cron-"))
    archive, out = data / "in", data / "out"
    try:
        archive.mkdir(parents=True, exist_ok=True)
        # In a child process: this one stays small, so the children's peak RSS is their own (a child's
        # counts what it shared with this process until it started the new program).
        subprocess.run([sys.executable, __file__, "--build", str(archive), str(args.mb), str(args.files)], check=True)
        wall, cpu, rss = cleancorpus(str(archive), "-o", str(out), "--workers", str(args.workers))
        print(f"# {args.mb} MB in {args.files} files, processed once: {wall:.1f} s (workers={args.workers})")
        print("| run | wall s | CPU s | peak RSS MB |")
        print("|---|---|---|---|")
        for _ in range(args.rounds):
            print("| no-op | {:.2f} | {:.2f} | {:.0f} |".format(*cleancorpus(str(archive), "-o", str(out))), flush=True)
        new = archive / "zz-new.jsonl"
        new.write_bytes(b"".join(CC.read_bytes().splitlines(keepends=True)[:100]))
        for _ in range(args.rounds):
            fresh = data / "out-copy"
            shutil.rmtree(fresh, ignore_errors=True)
            shutil.copytree(out, fresh, symlinks=True)
            row = cleancorpus(str(archive), "-o", str(fresh))
            print("| one new file | {:.2f} | {:.2f} | {:.0f} |".format(*row), flush=True)
        new.unlink()
    finally:
        if args.data is None:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
