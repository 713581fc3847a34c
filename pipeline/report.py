"""Per-stage statistics: gathered per batch (possibly in workers), merged, written as report.json."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.document import Removal

_NUMBER = re.compile(r"\d[\d,.]*")


@dataclass
class StageStats:
    stage: str
    documents_in: int = 0
    documents_out: int = 0
    documents_rejected: int = 0
    characters_in: int = 0
    characters_out: int = 0
    seconds: float = 0.0
    counters: Counter[str] = field(default_factory=Counter)
    rules: dict[str, Counter[str]] = field(default_factory=dict)  # rule -> spans, characters, lines
    rejections: Counter[str] = field(default_factory=Counter)  # reason kind -> documents

    def count_removals(self, removals: Iterable[Removal]) -> None:
        """Count a document's removals per rule. Summed in plain lists first: three Counter updates per
        removal took ~0.7 s of CPU for the 330k removals of 40 MB of web text (now ~0.08 s)."""
        tallies: dict[str, list[int]] = {}
        for removal in removals:
            tally = tallies.get(removal.rule)
            if tally is None:
                tallies[removal.rule] = [1, len(removal.text), removal.lines]
            else:
                tally[0] += 1
                tally[1] += len(removal.text)
                tally[2] += removal.lines
        for name, (spans, characters, lines) in tallies.items():
            rule = self.rules.get(name)
            if rule is None:
                rule = self.rules[name] = Counter()
            rule["spans"] += spans
            rule["characters"] += characters
            rule["lines"] += lines

    def merge(self, other: StageStats) -> None:
        self.documents_in += other.documents_in
        self.documents_out += other.documents_out
        self.documents_rejected += other.documents_rejected
        self.characters_in += other.characters_in
        self.characters_out += other.characters_out
        self.seconds += other.seconds
        self.counters.update(other.counters)
        self.rejections.update(other.rejections)
        for rule, counts in other.rules.items():
            self.rules.setdefault(rule, Counter()).update(counts)

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "documents_in": self.documents_in,
            "documents_out": self.documents_out,
            "documents_rejected": self.documents_rejected,
            "characters_in": self.characters_in,
            "characters_out": self.characters_out,
            "characters_removed": self.characters_in - self.characters_out,
            "lines_removed": sum(r["lines"] for r in self.rules.values()),
            "seconds": round(self.seconds, 4),
            "rules": {
                rule: {k: counts[k] for k in ("spans", "characters", "lines")}
                for rule, counts in sorted(self.rules.items(), key=lambda kv: (-kv[1]["characters"], kv[0]))
            },
            "rejections": dict(sorted(self.rejections.items())),
            "counters": dict(sorted(self.counters.items())),
        }


def reason_kind(reason: str) -> str:
    """A rejection reason without its particulars (ids, numbers, details), for counting."""
    for sep in (" of document", " (", ":"):
        reason = reason.split(sep, 1)[0]
    return _NUMBER.sub("N", reason.strip())
