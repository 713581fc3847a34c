"""The run: read inputs -> stages (batches; per-document stages may run in workers, cross-document
stages in this process, in input order) -> output files, audit files and report.json.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from pipeline import __version__
from pipeline.config import ConfigError, RunConfig, StageConfig
from pipeline.document import Document
from pipeline.executors import make_executor
from pipeline.io import AtomicFile, InputFile, OutputWriter, discover, jsonl_line, read_documents
from pipeline.report import StageStats, reason_kind
from pipeline.stages import Stage, stage_class

BATCH_DOCS = 64
BATCH_CHARS = 2_000_000


def build_stages(specs: Iterable[StageConfig]) -> list[Stage]:
    return [stage_class(spec.stage)(spec.options) for spec in specs]


@dataclass
class Batch:
    docs: list[Document]
    stats: dict[int, StageStats] = field(default_factory=dict)  # stage position -> stats


def apply_stage(stage: Stage, position: int, batch: Batch) -> None:
    """Run one stage over a batch, keeping its statistics; one failing document is quarantined."""
    st = batch.stats.setdefault(position, StageStats(stage.name))
    started = time.perf_counter()
    for doc in batch.docs:
        if doc.rejected:
            continue
        st.documents_in += 1
        st.characters_in += len(doc.text)
        seen = len(doc.removed)
        try:
            stage.process(doc)
        except Exception as err:  # a bug or a pathological document: quarantine it, go on
            st.counters["errors"] += 1
            doc.reject(stage.name, f"stage error: {type(err).__name__}: {err}")
        for removal in doc.removed[seen:]:
            st.count_removal(removal)
        if not doc.rejected and not doc.text.strip():
            doc.reject(stage.name, f"empty after {stage.name}")
        if doc.rejected:
            st.documents_rejected += 1
            st.rejections[reason_kind(doc.rejected.reason)] += 1
        else:
            st.documents_out += 1
            st.characters_out += len(doc.text)
    st.seconds += time.perf_counter() - started
    st.counters.update(stage.take_stats())


# Stages of this process; workers build theirs once in _init_worker.
_stages: list[Stage] = []


def _init_worker(stages: list[Stage | None]) -> None:
    """Receive, in a worker process, the (prepared) stages it runs; the others stay in the main process."""
    global _stages
    _stages = stages  # type: ignore[assignment]


def _run_positions(positions: list[int], batch: Batch) -> Batch:
    for position in positions:
        apply_stage(_stages[position], position, batch)
    return batch


def plan_segments(stages: list[Stage]) -> list[tuple[bool, list[int]]]:
    """Group stage positions into runs: (cross_document, positions). Per-document runs go to workers."""
    segments: list[tuple[bool, list[int]]] = []
    for i, stage in enumerate(stages):
        cross = stage.cross_document
        if segments and not cross and not segments[-1][0]:
            segments[-1][1].append(i)
        else:
            segments.append((cross, [i]))
    return segments


def _batches(docs: Iterable[Document]) -> Iterator[Batch]:
    batch: list[Document] = []
    chars = 0
    for doc in docs:
        batch.append(doc)
        chars += len(doc.text)
        if len(batch) >= BATCH_DOCS or chars >= BATCH_CHARS:
            yield Batch(batch)
            batch, chars = [], 0
    if batch:
        yield Batch(batch)


@dataclass
class RunResult:
    outdir: Path
    report: dict[str, Any]

    @property
    def documents_in(self) -> int:
        return self.report["documents"]["in"]

    @property
    def documents_out(self) -> int:
        return self.report["documents"]["out"]

    @property
    def documents_rejected(self) -> int:
        return self.report["documents"]["rejected"]


class _Outputs:
    """Output files in input order, plus the audit files; all atomic."""

    def __init__(self, config: RunConfig, files: list[InputFile], outdir: Path) -> None:
        self.config = config
        self.files = files
        self.outdir = outdir
        self.index = {f.rel: i for i, f in enumerate(files)}
        self.next_file = 0  # files before this one are complete
        self.writer: OutputWriter | None = None
        audit = config.output.audit
        self.rejected = AtomicFile(outdir / "rejected.jsonl") if audit else None
        self.removed = AtomicFile(outdir / "removed.jsonl") if audit else None

    def _advance_to(self, file_index: int) -> None:
        while self.next_file <= file_index:
            if self.writer is not None:
                self.writer.commit()
            f = self.files[self.next_file]
            self.writer = OutputWriter(f, self.outdir, self.config.input, self.config.output.metadata_field)
            self.next_file += 1

    def write(self, doc: Document) -> None:
        self._advance_to(self.index[doc.source])
        if self.removed is not None:
            for r in doc.removed:
                self.removed.write(
                    jsonl_line(
                        {
                            "id": doc.id,
                            "source": doc.source,
                            "stage": r.stage,
                            "rule": r.rule,
                            "text": r.text,
                            **(r.extra or {}),
                        }
                    )
                )
        if doc.rejected is not None:
            if self.rejected is not None:
                record: dict[str, Any] = {"id": doc.id, "source": doc.source}
                if doc.line_no:
                    record["line"] = doc.line_no
                record.update(stage=doc.rejected.stage, reason=doc.rejected.reason, **(doc.rejected.extra or {}))
                record["text"] = doc.original
                self.rejected.write(jsonl_line(record))
            return
        assert self.writer is not None
        self.writer.write(doc)

    def finish(self, last_file: int) -> None:
        self._advance_to(last_file)
        if self.writer is not None:
            self.writer.commit()
            self.writer = None
        for f in (self.rejected, self.removed):
            if f is not None:
                f.commit()

    def abort(self) -> None:
        for f in (self.writer.file if self.writer else None, self.rejected, self.removed):
            if f is not None:
                f.abort()


def run(
    config: RunConfig,
    inputs: list[str] | None = None,
    outdir: str | Path | None = None,
    workers: int = 1,
    limit: int | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
) -> RunResult:
    """Run the pipeline. ``on_progress(documents_done, bytes_done_estimate, bytes_total)``."""
    started_at = datetime.now(timezone.utc)
    started = time.perf_counter()
    out = Path(outdir if outdir is not None else config.output.dir)
    paths = list(inputs) if inputs else list(config.input.paths)
    if not paths:
        raise ConfigError("no input: name files or folders on the command line or in the config's input:")
    for p in paths:
        if Path(p).is_dir() and Path(p).resolve() == out.resolve():
            raise ConfigError(f"the output folder {out} is the input folder {p}: choose another with -o")
    files, skipped = discover(paths, exclude=out)
    for f in files:
        if (out / f.rel).resolve() == f.path.resolve():
            raise ConfigError(f"output would overwrite the input file {f.path}: choose another output folder")
    if not files:
        raise ConfigError(
            f"no input files found in {', '.join(paths)} (supported: .txt, .jsonl, .jsonl.gz, .jsonl.zst)"
        )
    out.mkdir(parents=True, exist_ok=True)

    specs = config.enabled_stages()
    stages = build_stages(specs)
    segments = plan_segments(stages)
    input_rejections: dict[str, int] = {}

    def read_all(count: bool = True) -> Iterator[Document]:
        docs = (doc for f in files for doc in read_documents(f, config.input))
        for doc in docs if limit is None else islice(docs, limit):
            if count and doc.rejected:
                kind = reason_kind(doc.rejected.reason)
                input_rejections[kind] = input_rejections.get(kind, 0) + 1
            yield doc

    for stage in stages:
        if stage.needs_prepare:
            stage.prepare(doc for doc in read_all(count=False) if not doc.rejected)

    global _stages
    _stages = stages  # cross-document stages always run here, and every stage in a serial run
    worker_stages = [None if stage.cross_document else stage for stage in stages]
    executor = make_executor(workers, _init_worker, (worker_stages,))
    docs = read_all()
    stream: Iterator[Batch] = _batches(docs)
    for cross, positions in segments:
        if cross:
            stream = map(partial(_run_positions, positions), stream)
        else:
            stream = executor.map(partial(_run_positions, positions), stream)

    totals: dict[int, StageStats] = {i: StageStats(s.name) for i, s in enumerate(stages)}
    outputs = _Outputs(config, files, out)
    kept = rejected = chars_in = chars_out = done = 0
    last_file = -1
    total_bytes = sum(f.size for f in files)
    try:
        for batch in stream:
            for position, st in batch.stats.items():
                totals[position].merge(st)
            for doc in batch.docs:
                done += 1
                chars_in += len(doc.original)
                last_file = outputs.index[doc.source]
                outputs.write(doc)
                if doc.rejected:
                    rejected += 1
                else:
                    kept += 1
                    chars_out += len(doc.text)
            if on_progress:
                on_progress(done, chars_in, total_bytes)
        for position, stage in enumerate(stages):
            if stage.cross_document:
                stage.close()
                totals[position].counters.update(stage.take_stats())
        outputs.finish(last_file if limit is not None else len(files) - 1)
    except BaseException:
        outputs.abort()
        raise
    finally:
        executor.close()

    report = {
        "cleancorpus": __version__,
        "started": started_at.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 3),
        "workers": workers,
        "inputs": {
            "files": len(files),
            "bytes": total_bytes,
            "skipped": [{"path": p, "reason": r} for p, r in skipped],
        },
        "documents": {
            "in": done,
            "out": kept,
            "rejected": rejected,
            "rejected_at_input": dict(sorted(input_rejections.items())),
        },
        "characters": {"in": chars_in, "out": chars_out, "removed": chars_in - chars_out},
        "stages": [totals[i].to_json() for i in range(len(stages))],
        "config": config.dump(),
    }
    report_file = AtomicFile(out / "report.json")
    report_file.write(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n")
    report_file.commit()
    return RunResult(out, report)
