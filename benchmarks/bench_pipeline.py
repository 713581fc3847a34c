"""End-to-end throughput of the default pipeline, per stage, on the shared real corpora.

    python benchmarks/bench_pipeline.py [--workers N] [--corpus cc|trafilatura|both]

Prints one Markdown table row per corpus: input MB, seconds, MB/s, docs/s, and seconds per stage
(from report.json). Results go into benchmarks/RESULTS.md by hand, with the machine and command.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.config import default_config  # noqa: E402
from pipeline.runner import run  # noqa: E402

CORPORA = REPO.parent / "shared" / "corpora"
INPUTS = {
    "cc": CORPORA / "cc-2019-30-dolma" / "docs.jsonl",
    "trafilatura": CORPORA / "trafilatura-testpages" / "text" / "docs.jsonl",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--corpus", choices=[*INPUTS, "both"], default="both")
    args = parser.parse_args()
    names = list(INPUTS) if args.corpus == "both" else [args.corpus]
    print(f"# {platform.processor() or platform.machine()}, {platform.python_version()}, workers={args.workers}")
    stage_names = [s.stage for s in default_config().enabled_stages()]
    print("| corpus | MB | docs | seconds | MB/s | docs/s | " + " | ".join(f"{s} s" for s in stage_names) + " |")
    print("|---" * (6 + len(stage_names)) + "|")
    for name in names:
        path = INPUTS[name]
        with tempfile.TemporaryDirectory() as out:
            result = run(default_config(), [str(path)], out, workers=args.workers)
        report = result.report
        mb = path.stat().st_size / 1e6
        seconds = report["seconds"]
        per_stage = " | ".join(f"{s['seconds']:.2f}" for s in report["stages"])
        print(
            f"| {name} | {mb:.1f} | {result.documents_in} | {seconds:.1f} | {mb / seconds:.2f} | "
            f"{result.documents_in / seconds:.0f} | {per_stage} |"
        )


if __name__ == "__main__":
    main()
