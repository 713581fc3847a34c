"""CPU of each part of the first pass (boilerplate's recurring-line counts), one process, no workers.

    python benchmarks/first_pass_costs.py INPUT [--rounds 3]   (from the repository root)

Times, with ``time.process_time`` (median of the rounds), what the first pass does over INPUT with the default
config: reading and parsing the documents (the main process at any --workers), sending them to a local worker
(``_outgoing``, pickling, unpickling), the stages before the first-pass stage as the first pass runs them
(``_apply_noting``; and their ``process`` alone, for its overhead), ``prepare_part``, a batch's result going back
(``_prepare_sent``'s result pickled in the worker, unpickled and unpacked in the main process) and
``prepare_merge``. The digest of what the merge learnt (the recurring lines, corpus-wide and per site) is printed
to compare two trees: run this script of each tree from its root (it imports that tree's ``pipeline``).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import pickle
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this tree's pipeline, not an installed one

from pipeline import io, runner  # noqa: E402
from pipeline.config import default_config  # noqa: E402
from pipeline.executors import Shared  # noqa: E402


def timed(name: str, fn: Callable[[], Any], rounds: int) -> Any:
    times, result = [], None
    for _ in range(rounds):
        started = time.process_time()
        result = fn()
        times.append(time.process_time() - started)
    shown = " ".join(f"{t:.3f}" for t in times)
    print(f"{name:44s} {statistics.median(times):7.3f}  ({shown})", flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    gc.disable()  # as a run does until its objects are frozen
    config = default_config()
    specs = config.enabled_stages()
    stages = runner.build_stages(specs)
    position = next(i for i, stage in enumerate(stages) if stage.needs_prepare)
    stage = stages[position]
    shared = Shared(value=runner._worker_stages(specs, stages, also=position))
    files, _ = io.discover([args.input])
    rounds = args.rounds

    def read() -> list[Any]:
        return [doc for f in files for doc in io.read_documents(f, config.input)]

    docs = timed("read and parse (main process)", read, rounds)
    batches = list(runner._batches(iter(docs)))
    text_field = config.input.text_field

    def outgoing() -> list[list[tuple[Any, ...]]]:
        return [[runner._outgoing(d, text_field) for d in b.docs if d.rejected is None] for b in batches]

    sent = timed("_outgoing (main process)", outgoing, rounds)
    blobs = timed("pickle sent (main process)", lambda: [pickle.dumps(s, protocol=5) for s in sent], rounds)
    timed("unpickle sent (workers)", lambda: [pickle.loads(b) for b in blobs], rounds)

    def incoming() -> list[runner.Batch]:
        return [runner.Batch([runner._incoming(p) for p in s]) for s in sent]

    def noting() -> list[runner.Batch]:
        made = incoming()
        for batch in made:
            masks = [0] * len(batch.docs)
            for i, before in enumerate(stages[:position]):
                runner._apply_noting(before, i, batch, masks)
        return made

    def process_only() -> None:
        for batch in incoming():
            for before in stages[:position]:
                for doc in batch.docs:
                    before.process(doc)

    prepared = timed(f"stages before {stage.name}, _apply_noting (workers)", noting, rounds)
    timed(f"stages before {stage.name}, process only", process_only, rounds)
    live = [doc for batch in prepared for doc in batch.docs if doc.rejected is None]
    parts = timed(f"{stage.name}.prepare_part (workers)", lambda: [stage.prepare_part(d) for d in live], rounds)
    results = [runner._prepare_sent(shared, position, s) for s in sent]
    back = timed("result pickled (workers)", lambda: [pickle.dumps(r, protocol=5) for r in results], rounds)
    unpacked = getattr(runner, "_unpacked", None)  # (a tree before packed results has none)

    def receive() -> list[Any]:
        got = [pickle.loads(b) for b in back]
        return [p if not isinstance(p, bytes) else unpacked(stage, p, alive) for p, _, alive in got]  # type: ignore[misc]

    timed("result unpickled, unpacked (main process)", receive, rounds)
    timed(f"{stage.name}.prepare_merge (main process)", lambda: stage.prepare_merge(iter(parts)), rounds)
    learnt = repr(
        (
            sorted(getattr(stage, "recurring", ())),
            [(site, sorted(lines)) for site, lines in getattr(stage, "recurring_by_site", {}).items()],
        )
    )
    print(f"documents {len(docs)}, batches {len(batches)}, learnt {hashlib.sha256(learnt.encode()).hexdigest()[:16]}")


if __name__ == "__main__":
    main()
