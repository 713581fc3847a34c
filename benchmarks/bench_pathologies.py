"""Inputs whose run time could grow faster than their size: one document at two sizes, each run timed.

    python benchmarks/bench_pathologies.py [--sizes 1000000,4000000] [--cases all]

Each case builds one JSONL document of SIZE characters from the lingua sentences (seeded), runs
``cleancorpus run`` on it in a fresh process (default config), and prints the wall seconds, the seconds per
million characters, the peak RSS and the slowest stage's seconds (report.json). Work that grows with the
square of a document's size shows as seconds per million characters growing with the size; linear work keeps
them about equal. The cases come from exploratory testing (session 11), where they took minutes:

* ``phrasebook``: English lines, each with a three-word Russian phrase in brackets, a German line every third;
* ``zhbook``: the same with Chinese lines and a Japanese line every third;
* ``scripts-line``: one line of words cycling through Cyrillic, Greek, Arabic and Latin;
* ``wordlist``: short lines of 2-8 words (a word list or phrase book), cut from the CC corpus's lines (session 12:
  15M characters peaked at 2.55 GB RSS, ~170 bytes per character).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpora import CC_DOCS, CORPORA, REPO  # noqa: E402

LINGUA = CORPORA / "lingua-sentences"


def _sentences(lang: str, min_words: int = 0, min_chars: int = 0) -> list[str]:
    lines = (LINGUA / f"{lang}.txt").read_text(encoding="utf-8").split("\n")
    return [s for s in lines if len(s.split()) >= min_words and len(s) >= min_chars]


def phrasebook(size: int, rng: random.Random) -> str:
    en, ru, de = _sentences("en", 6), _sentences("ru", 4), _sentences("de", 6)
    return _lines(size, rng, lambda i: f"{rng.choice(en)} ({' '.join(rng.choice(ru).split()[:3])})", de)


def zhbook(size: int, rng: random.Random) -> str:
    zh, ru, ja = _sentences("zh", min_chars=10), _sentences("ru", 4), _sentences("ja", min_chars=10)
    return _lines(size, rng, lambda i: f"{rng.choice(zh)}（{' '.join(rng.choice(ru).split()[:3])}）", ja)


def _lines(size: int, rng: random.Random, line: Callable[[int], str], third: list[str]) -> str:
    out, n, i = [], 0, 0
    while n < size:
        i += 1
        piece = line(i) + ("\n" if i % 3 else "\n" + rng.choice(third) + "\n")
        out.append(piece)
        n += len(piece)
    return "".join(out)[:size]


def scripts_line(size: int, rng: random.Random) -> str:
    words = {lang: " ".join(_sentences(lang, 4)).split() for lang in ("ru", "el", "ar", "en")}
    out, n, i = [], 0, 0
    order = list(words)
    while n < size:
        word = rng.choice(words[order[i % 4]])
        out.append(word)
        n += len(word) + 1
        i += 1
    return " ".join(out)[:size]


def wordlist(size: int, rng: random.Random) -> str:
    words = [
        line.split()
        for doc in CC_DOCS.open(encoding="utf-8")
        for line in json.loads(doc)["text"].split("\n")
        if len(line.split()) >= 2
    ]
    out, n = [], 0
    while n < size:
        line = rng.choice(words)
        k = rng.randint(2, 8)
        start = rng.randrange(max(1, len(line) - k + 1))
        piece = " ".join(line[start : start + k]) + "\n"
        out.append(piece)
        n += len(piece)
    return "".join(out)[:size]


CASES: dict[str, Callable[[int, random.Random], str]] = {
    "phrasebook": phrasebook,
    "zhbook": zhbook,
    "scripts-line": scripts_line,
    "wordlist": wordlist,
}


def run(case: str, size: int, folder: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB, and the slowest stage with its seconds."""
    src = folder / f"{case}-{size}.jsonl"
    text = CASES[case](size, random.Random(size))
    src.write_text(json.dumps({"id": case, "text": text}, ensure_ascii=False) + "\n", encoding="utf-8")
    out = folder / f"out-{case}-{size}"
    cmd = [sys.executable, "-c", "from pipeline.cli import main; main()", "run", str(src), "-o", str(out), "-q"]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(REPO)})
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        raise RuntimeError(f"{' '.join(cmd)} failed ({status})")
    stages = json.loads((out / "report.json").read_text(encoding="utf-8"))["stages"]
    slowest = max(stages, key=lambda s: s.get("seconds", 0))
    return wall, usage.ru_maxrss / 1024, f"{slowest['stage']} {slowest['seconds']:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000000,4000000", help="document sizes in characters")
    parser.add_argument("--cases", default="all", help=f"comma-separated, of {', '.join(CASES)}")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cases = list(CASES) if args.cases == "all" else args.cases.split(",")
    print("| case | characters | wall s | s per M characters | peak RSS MB | slowest stage |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="cc-patho-") as tmp:
        for case in cases:
            for size in sizes:
                wall, rss, slowest = run(case, size, Path(tmp))
                per_million = wall / size * 1e6
                print(f"| {case} | {size:,} | {wall:.1f} | {per_million:.1f} | {rss:.0f} | {slowest} |", flush=True)


if __name__ == "__main__":
    main()
