"""Record a stage's outputs to JSONL and compare a later run with the recording (speed work must not
change results): shared by the stage benchmarks' ``--record`` / ``--check-against`` options."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any


def record(path: Path, records: Iterable[dict[str, Any]]) -> None:
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    print(f"recorded {n} records to {path}")


def check_against(path: Path, records: Iterable[dict[str, Any]], label: tuple[str, ...]) -> bool:
    """Compare ``records`` with a recording; print the first differences, each named by ``label`` keys."""
    with open(path, encoding="utf-8") as f:
        expected = [json.loads(line) for line in f]
    got = [json.loads(json.dumps(rec, ensure_ascii=False, sort_keys=True)) for rec in records]
    diffs = 0
    if len(got) != len(expected):
        print(f"record count differs: {len(got)} now, {len(expected)} recorded")
        diffs += 1
    for old, new in zip(expected, got, strict=False):
        if old != new:
            diffs += 1
            if diffs <= 10:
                print("DIFF " + " ".join(str(new.get(k)) for k in label))
                for k in sorted(set(old) | set(new)):
                    if old.get(k) != new.get(k):
                        print(f"  {k}: was {str(old.get(k))[:300]!r}")
                        print(f"  {k}: now {str(new.get(k))[:300]!r}")
    print(f"{len(got)} records, {diffs} differ" + ("" if diffs else ": identical"))
    return diffs == 0


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--record", type=Path, help="write the stage's outputs here and stop")
    parser.add_argument("--check-against", type=Path, help="compare the outputs with a --record file and stop")


def run_requested(
    args: argparse.Namespace, outputs: Callable[[], Iterable[dict[str, Any]]], label: tuple[str, ...]
) -> bool:
    """Carry out ``--record`` (then True) or ``--check-against`` (exit 0 when identical, else 1)."""
    if args.record:
        record(args.record, outputs())
        return True
    if args.check_against:
        sys.exit(0 if check_against(args.check_against, outputs(), label) else 1)
    return False
