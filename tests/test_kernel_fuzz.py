"""benchmarks/kernel_fuzz.py in the suite: session 19's compiled code-point kernels (language lowering,
tokens, choice and pair scores; dedup words and units; boilerplate's line index) against the Python they
replaced, on random strings of case-fold traps, astral characters and odd whitespace (a small seeded run;
the benchmark runs thousands)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # (plain pytest imports the installed package; the benchmarks live in the repo)
    sys.path.insert(0, str(REPO))

from conftest import SHARED  # noqa: E402

from benchmarks import kernel_fuzz  # noqa: E402


@pytest.mark.parametrize("seed", [3, 4])
def test_the_kernels_agree_with_the_python_they_replaced(seed: int, monkeypatch, capsys) -> None:
    monkeypatch.setattr(kernel_fuzz, "SENTENCES", SHARED / "corpora" / "lingua-sentences")
    checks = kernel_fuzz.Checks(seed, 60)
    checks.run_all()
    assert checks.bad == 0, capsys.readouterr().out
    # every check ran on some input (an empty corpus folder would make this pass vacuously)
    assert len(checks.counts) == 10 and all(n > 0 for n in checks.counts.values()), checks.counts


def test_a_kernel_that_disagrees_is_reported(monkeypatch, capsys) -> None:
    """The check can fail: with the reference's runner-up made wrong, the compiled choice disagrees."""
    monkeypatch.setattr(kernel_fuzz, "SENTENCES", SHARED / "corpora" / "lingua-sentences")
    monkeypatch.setattr(kernel_fuzz, "runner_up", lambda scores, main: "xx")
    checks = kernel_fuzz.Checks(3, 60)
    checks.language_texts()
    assert checks.bad > 0


def test_a_quote_mark_scan_that_disagrees_is_reported(monkeypatch, capsys) -> None:
    """The quotation-mark check can fail: against a reference that never finds an opening mark, the
    stage's `_open_mark` (which does, on some of 60 random strings of marks) disagrees."""
    monkeypatch.setattr(kernel_fuzz, "open_mark", lambda text, s, e: None)
    checks = kernel_fuzz.Checks(3, 60)
    checks.quote_marks()
    assert checks.bad > 0


def test_a_clause_split_that_disagrees_is_reported(monkeypatch, capsys) -> None:
    """The clause check can fail: against a regex split that never finds a clause, the compiled one (which
    does, on some of 60 random strings of marks, spaces and dashes) disagrees."""
    monkeypatch.setattr(kernel_fuzz.L, "_clauses", lambda text, s, e: [])
    checks = kernel_fuzz.Checks(3, 60)
    checks.clauses()
    assert checks.bad > 0
