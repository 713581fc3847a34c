"""The encoding stage against ftfy.fix_text with the same options, side by side, identical output.

    python benchmarks/bench_encoding.py [--repeat 3] [--write benchmarks/results/encoding.md]

For each preset and corpus: the median wall time over ``--repeat`` runs of (a) ``ftfy.fix_text``
on every document and (b) the stage's ``process`` on the same documents; MB/s of UTF-8 input and
the ratio. Every output of the stage is asserted equal to ftfy's, document by document, and also
line by line on all 75 lingua-sentences files and on every ftfy test case.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import ftfy

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.corpora import CORPORA  # noqa: E402
from pipeline.document import Document  # noqa: E402
from pipeline.stages.encoding import EncodingOptions, EncodingStage  # noqa: E402

PRESETS = ["preserve", "ftfy-default"]


def jsonl_texts(path: Path) -> list[str]:
    # bytes.splitlines: JSON strings may hold a raw U+2028, which str.splitlines would split on.
    return [json.loads(line)["text"] for line in path.read_bytes().splitlines() if line.strip()]


def timed(fn: Callable[[], list[str]], repeat: int) -> tuple[float, list[str]]:
    times, out = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def run_stage(stage: EncodingStage, texts: list[str]) -> list[str]:
    docs = [Document(str(i), t, "bench") for i, t in enumerate(texts)]
    for doc in docs:
        stage.process(doc)
    return [d.text for d in docs]


def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, ftfy {ftfy.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measurement (median reported)")
    parser.add_argument("--write", type=Path, help="also write the results table (markdown) here")
    args = parser.parse_args()

    corpora = {
        "trafilatura-testpages (1,033 pages)": jsonl_texts(CORPORA / "trafilatura-testpages" / "text" / "docs.jsonl"),
        "cc-2019-30-dolma (697 docs)": jsonl_texts(CORPORA / "cc-2019-30-dolma" / "docs.jsonl"),
    }
    corpora["both together"] = [t for texts in list(corpora.values()) for t in texts]
    lingua = [p.read_text(encoding="utf-8") for p in sorted((CORPORA / "lingua-sentences").glob("*.txt"))]
    cases = [
        c["original"]
        for f in sorted((CORPORA / "ftfy-test-cases").glob("*.json"))
        for c in json.loads(f.read_text(encoding="utf-8"))
    ]
    assert len(lingua) == 75

    rows = []
    for preset in PRESETS:
        stage = EncodingStage(EncodingOptions(preset=preset))
        config = stage.ftfy_config._replace(explain=False)  # ftfy's fastest mode, same text
        for name, texts in corpora.items():
            mb = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) / 1e6
            t_ftfy, ref = timed(
                lambda texts=texts, config=config: [ftfy.fix_text(t, config) for t in texts], args.repeat
            )
            t_ours, got = timed(lambda texts=texts, stage=stage: run_stage(stage, texts), args.repeat)
            bad = [i for i, (a, b) in enumerate(zip(ref, got, strict=True)) if a != b]
            assert not bad, f"{preset} {name}: {len(bad)} documents differ from ftfy, first {bad[:5]}"
            changed = sum(a != b for a, b in zip(texts, ref, strict=True))
            rows.append((preset, name, mb, len(texts), changed, mb / t_ftfy, mb / t_ours, t_ftfy / t_ours))
            print(f"{preset:13} {name:38} {mb:6.2f} MB  ftfy {mb / t_ftfy:6.2f} MB/s  stage {mb / t_ours:7.2f} MB/s"
                  f"  x{t_ftfy / t_ours:5.1f}  ({changed} docs changed, outputs identical)", flush=True)  # fmt: skip
        # Exactness on every line of every language and on every ftfy case (each line its own text).
        lines = [line for text in lingua for line in text.splitlines(keepends=True)] + cases
        bad_lines = [s for s in lines if run_stage(stage, [s])[0] != ftfy.fix_text(s, config)]
        assert not bad_lines, f"{preset}: {len(bad_lines)} lines differ, e.g. {bad_lines[:3]!r}"
        whole = run_stage(stage, lingua)
        assert whole == [ftfy.fix_text(t, config) for t in lingua], f"{preset}: a lingua file differs"
        print(f"{preset:13} identical to ftfy on {len(lines):,} lines (75 lingua files + {len(cases)} ftfy cases)")

    if args.write:
        table = [
            "| preset | corpus | MB | docs | docs ftfy changes | ftfy.fix_text MB/s | stage MB/s | speed-up |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for preset, name, mb, n, changed, f, s, r in rows:
            table.append(f"| {preset} | {name} | {mb:.2f} | {n} | {changed} | {f:.2f} | {s:.1f} | {r:.1f}x |")
        args.write.write_text("\n".join([f"Machine: {machine()}", "", *table, ""]), encoding="utf-8")
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
