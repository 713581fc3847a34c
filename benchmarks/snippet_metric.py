"""The snippet metric of trafilatura's own evaluation, shared by the boilerplate and extract benchmarks.

A `with` snippet found in the output is a true positive, missing a false negative; a `without` snippet
found in the output is a false positive, absent a true negative. Only snippets present in the input
count; whitespace is folded everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass


def fold(s: str) -> str:
    return " ".join(s.split())


@dataclass
class Score:
    tp: int = 0
    fn: int = 0
    fp: int = 0
    tn: int = 0

    def add(self, other: Score) -> None:
        self.tp += other.tp
        self.fn += other.fn
        self.fp += other.fp
        self.tn += other.tn

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def row(self) -> str:
        return (
            f"{self.tp} | {self.fn} | {self.fp} | {self.tn} | "
            f"{self.precision:.3f} | {self.recall:.4f} | **{self.f1:.3f}**"
        )


def score_page(gold: dict, before: str, after: str) -> tuple[Score, list[str], list[str]]:
    """Score one page's folded input and output: (score, content snippets lost, chrome snippets left)."""
    score, lost, left = Score(), [], []
    for snippet in map(fold, gold["with"]):
        if snippet and snippet in before:
            if snippet in after:
                score.tp += 1
            else:
                score.fn += 1
                lost.append(snippet)
    for snippet in map(fold, gold["without"]):
        if snippet and snippet in before:
            if snippet in after:
                score.fp += 1
                left.append(snippet)
            else:
                score.tn += 1
    return score, lost, left
