"""What running two workers at once costs each of them on this machine, apart from the runner (issue 10).

    python benchmarks/bench_concurrency.py [INPUT] [--docs N] [--rounds R]   (from the repository root)

Prepares the default stages on the first N documents of INPUT (boilerplate's first pass), then runs the
per-document stages of the stream (extract, encoding, boilerplate, language) over those documents in forked
children: one alone, then two at once, R rounds. Each child reports its CPU time for the same work; no
pickling, no pipes, no main process competing. The ratio is what a 2-worker stream cannot avoid here:
with a penalty p, 2 workers give at most 2 / (1 + p) over 1 for the parallel part.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's pipeline, not an installed one

from pipeline import runner  # noqa: E402
from pipeline.config import default_config  # noqa: E402
from pipeline.document import Document  # noqa: E402
from pipeline.executors import SerialExecutor  # noqa: E402
from pipeline.io import discover, read_documents  # noqa: E402
from pipeline.stages import Stage  # noqa: E402


def _work(stages: list[Stage], texts: list[str]) -> float:
    """CPU seconds of the stages over the texts (after a short warm-up of this process's caches)."""
    for text in texts[:20]:
        doc = Document("warm", text, "bench")
        for stage in stages:
            stage.process(doc)
    started = time.process_time()
    for text in texts:
        doc = Document("bench", text, "bench")
        for stage in stages:
            if doc.rejected is None:
                stage.process(doc)
    return time.process_time() - started


def _in_children(n: int, stages: list[Stage], texts: list[str]) -> list[float]:
    children = []
    for _ in range(n):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its CPU time, through the pipe
            os.close(read)
            os.write(write, repr(_work(stages, texts)).encode())
            os._exit(0)
        os.close(write)
        children.append((pid, read))
    seconds = []
    for pid, read in children:
        os.waitpid(pid, 0)
        with os.fdopen(read, "rb") as fh:
            seconds.append(float(fh.read()))
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", nargs="?", default="/tmp/scale/input-40mb.jsonl")
    parser.add_argument("--docs", type=int, default=1200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    config = default_config()
    specs = config.enabled_stages()
    stages = runner.build_stages(specs)
    files, _ = discover([args.input])

    def docs() -> list[Document]:
        return list(islice((doc for f in files for doc in read_documents(f, config.input)), args.docs))

    runner._first_pass(SerialExecutor(), specs, stages, files, lambda _files: iter(docs()), config.input.text_field)
    texts = [doc.text for doc in docs() if doc.rejected is None]
    per_document = [s for s in stages if not s.cross_document and s.name != "normalize"]
    gc.freeze()  # (as the runner does before its workers fork)
    print(f"{len(texts)} documents through {', '.join(s.name for s in per_document)}; CPU s per process")
    ratios = []
    for r in range(args.rounds):
        alone = _in_children(1, per_document, texts)[0]
        together = _in_children(2, per_document, texts)
        ratios.append(sum(together) / 2 / alone)
        load = Path("/proc/loadavg").read_text().split()[0]
        print(f"round {r + 1}: one alone {alone:.3f}, two at once {together[0]:.3f} / {together[1]:.3f} (load {load})")
    print(f"two at once / alone: {', '.join(f'{x:.3f}' for x in ratios)}")


if __name__ == "__main__":
    main()
