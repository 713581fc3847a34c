"""The boilerplate benchmark's timing of the cleaning pass (benchmarks/bench_boilerplate.py)."""

from __future__ import annotations

import sys
import time

from conftest import REPO

from pipeline import runner
from pipeline.document import Document
from pipeline.stages.boilerplate import BoilerplateStage

sys.path.insert(0, str(REPO))  # (plain `pytest`, as CI runs it, puts tests/ on the path, not the repo)
from benchmarks.bench_boilerplate import cleaning_pass  # noqa: E402

PAGE = (
    "Skip to content\nHome\nNews\nSport\nWeather\nContact\n\n"
    "The council voted on Monday to build forty kilometres of protected bike lanes across the city.\n\n"
    "Opponents said that the lanes would remove hundreds of parking spaces from the busiest streets.\n\n"
    "Share on Facebook\nShare on Twitter\n"
)


def _pages(count: int) -> list[Document]:
    return [Document(f"p{i}", PAGE.replace("Monday", f"day {i}"), "pages.jsonl") for i in range(count)]


def test_cleaning_pass_as_the_runner_runs_it_cleans_the_same():
    # More documents than one runner batch: the pass goes on after a batch is settled.
    count = runner.BATCH_DOCS + 5
    kept, settled = _pages(count), _pages(count)
    for docs in (kept, settled):
        stage = BoilerplateStage()
        stage.prepare(docs)
        paused = [False]
        seconds = cleaning_pass(stage, docs, time.process_time, runner_gc=docs is settled, paused=paused)
        assert seconds >= 0 and paused == [False]
    assert [d.text for d in settled] == [d.text for d in kept]
    assert "Skip to content" not in kept[0].text and "bike lanes" in kept[0].text
    # By default every document keeps its removal records; as the runner does, they are handed on (dropped).
    assert all(d.removed for d in kept)
    assert not any(d.removed for d in settled)


def test_cleaning_pass_as_the_runner_runs_it_pauses_the_collector_during_a_batch():
    # The runner runs a batch's task with the collector's automatic passes paused (runner._collector_paused):
    # the timed pass does too, and the collector is on again afterwards; the plain pass leaves it alone.
    import gc

    for runner_gc in (True, False):
        docs = _pages(runner.BATCH_DOCS + 5)
        stage = BoilerplateStage()
        stage.prepare(docs)
        seen: list[bool] = []
        process = stage.process

        def spy(doc: Document, process=process, seen=seen) -> None:
            seen.append(gc.isenabled())
            process(doc)

        stage.process = spy  # type: ignore[method-assign]
        assert gc.isenabled()
        cleaning_pass(stage, docs, time.process_time, runner_gc=runner_gc)
        assert gc.isenabled()
        assert len(seen) == len(docs) and set(seen) == {not runner_gc}
