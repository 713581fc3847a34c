"""Quality and speed of the `language` stage on real text.

    python benchmarks/bench_language.py [--split test|dev] [--skip-speed] [--skip-quality] [--repeat 3]
    python benchmarks/bench_language.py --record OUT.jsonl          # outputs of the current stage
    python benchmarks/bench_language.py --check-against OUT.jsonl   # same outputs, record for record?

Quality: mixed documents built from real lingua sentences (host sentences with one inserted guest
sentence, or one guest clause inserted inside a host sentence; exact gold spans), scored as
token-level precision and recall of the text the stage flags (action `tag`), per case and overall.
Only the FIRST half of each lingua file is used here: the word profiles
(`pipeline/data/language/profiles.json`) were built from the second half. Within the first half,
`dev` (second quarter) was used to set thresholds, `test` (first quarter, the default) is reported.
Monolingual: share of tokens flagged on unmodified lingua documents (every language) and on the
English pages (`lang_guess == "en"`) of the CC and trafilatura corpora.
Speed: the stage (defaults, action `remove`) on every CC + trafilatura document, and side by side on
every 10th document the stage vs langdetect on every sentence (seeded, default settings).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import regex

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks import recording  # noqa: E402
from pipeline.document import Document  # noqa: E402
from pipeline.stages.language import LanguageStage  # noqa: E402

CORPORA = REPO.parent / "shared" / "corpora"
SENTENCES = CORPORA / "lingua-sentences"
PAGES = {
    "cc": CORPORA / "cc-2019-30-dolma" / "docs.jsonl",
    "trafilatura": CORPORA / "trafilatura-testpages" / "text" / "docs.jsonl",
}
# A token: one Han/Kana character, or a run of letters/digits.
TOKEN_RE = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]|[\p{L}\p{M}\p{N}]+")
UNSPACED = {"zh", "ja", "th"}
CROSS = [
    ("en", "ru"), ("en", "zh"), ("en", "ja"), ("en", "ko"), ("en", "ar"), ("en", "el"),
    ("de", "ru"), ("de", "zh"), ("de", "th"), ("fr", "ja"), ("es", "he"), ("es", "hi"),
    ("ru", "en"), ("ru", "zh"), ("zh", "en"), ("zh", "ru"),
]  # fmt: skip
SAME = [
    ("en", "de"), ("en", "fr"), ("en", "es"), ("en", "it"), ("de", "en"), ("de", "fr"),
    ("fr", "en"), ("fr", "de"), ("es", "en"), ("it", "en"), ("nl", "en"), ("pl", "en"),
    ("pt", "es"), ("ru", "uk"), ("zh", "ja"),
]  # fmt: skip
DOCS_PER_CASE = 20
HOST_SENTENCES = 8


def lingua(lang: str, split: str) -> list[str]:
    lines = [x.strip() for x in (SENTENCES / f"{lang}.txt").read_text(encoding="utf-8").splitlines()]
    first_half = lines[: len(lines) // 2]
    q = len(first_half) // 2
    part = first_half[:q] if split == "test" else first_half[q:]
    return [x for x in part if x]


def n_units(text: str, lang: str) -> int:
    """Words, or characters for languages written without spaces."""
    return len(TOKEN_RE.findall(text)) if lang in UNSPACED else len(text.split())


def clause_of(sentence: str, lang: str, rng: random.Random) -> str | None:
    """A clause of 4..12 words (4..15 CJK characters) from a guest sentence."""
    pieces = [p.strip(" .!?。！？\"'“”„«»()") for p in regex.split(r"[,;:，；：、]", sentence)]
    good = [p for p in pieces if 4 <= n_units(p, lang) <= (15 if lang in UNSPACED else 12) and wordy(p, lang)]
    if good:
        return rng.choice(good)
    if lang in UNSPACED:
        return None
    words = sentence.strip(" .!?").split()
    clause = " ".join(words[: rng.randint(4, 8)])
    return clause if len(words) >= 4 and wordy(clause, lang) else None


def wordy(clause: str, lang: str) -> bool:
    """Language, not a list of names or numbers (which the stage must not flag): for spaced
    scripts, at least half the words are lowercase (or uncased) letters."""
    if lang in UNSPACED:
        return True
    words = clause.split()
    return sum(w.isalpha() and w == w.lower() for w in words) >= len(words) / 2


def wrap(clause: str, host: str, rng: random.Random) -> tuple[str, str]:
    """Delimiters around an inserted clause, as real text has them."""
    if host in UNSPACED:
        return rng.choice([("（", "）"), ("，", "，"), ("「", "」")])
    quotes = {"de": ("„", "“"), "fr": ("« ", " »"), "ru": ("«", "»"), "pl": ("„", "”")}.get(host, ("“", "”"))
    return rng.choice([(", ", ","), (" (", ")"), (" " + quotes[0], quotes[1]), (" – ", " –")])


def mixed_documents(host: str, guest: str, kind: str, split: str):
    """(text, gold span) for DOCS_PER_CASE documents of one case."""
    rng = random.Random(f"{host}-{guest}-{kind}-{split}")
    hosts, guests = lingua(host, split), lingua(guest, split)
    joiner = "" if host in UNSPACED else " "
    made = 0
    i = 0
    while made < DOCS_PER_CASE and (i + 1) * HOST_SENTENCES <= len(hosts):
        sents = hosts[i * HOST_SENTENCES : (i + 1) * HOST_SENTENCES]
        i += 1
        g = rng.choice(guests)
        if kind == "sentence":
            if n_units(g, guest) < 4:
                continue
            k = rng.randrange(1, HOST_SENTENCES)
            start = len(joiner.join(sents[:k])) + len(joiner)
            text = joiner.join([*sents[:k], g, *sents[k:]])
            yield text, (start, start + len(g))
        else:
            clause = clause_of(g, guest, rng)
            if clause is None:
                continue
            k = rng.randrange(HOST_SENTENCES)
            target = sents[k]
            cuts = [m.start() for m in regex.finditer(r" ", target)] if host not in UNSPACED else []
            if host in UNSPACED:
                cuts = list(range(4, max(5, len(target) - 4)))
            cuts = cuts[2:-2] if len(cuts) > 4 else cuts
            if not cuts:
                continue
            at = rng.choice(cuts)
            opener, closer = wrap(clause, host, rng)
            new = target[:at] + opener + clause + closer + target[at:]
            before = joiner.join(sents[:k]) + (joiner if k else "")
            start = len(before) + at + len(opener)
            sents[k] = new
            yield joiner.join(sents), (start, start + len(clause))
        made += 1


def tokens(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in TOKEN_RE.finditer(text)]


def flagged(stage: LanguageStage, text: str) -> list[tuple[int, int]]:
    doc = Document(id="b", text=text, source="b")
    stage.process(doc)
    return [(f["start"], f["end"]) for f in doc.meta.get("language_fragments", [])]


def inside(tok: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(s <= tok[0] and tok[1] <= e for s, e in spans)


def quality(split: str) -> None:
    stage = LanguageStage(LanguageStage.Options(action="tag"))
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # tp, flagged, gold
    rows = []
    for family, pairs in (("cross-script", CROSS), ("same-script", SAME)):
        for host, guest in pairs:
            for kind in ("sentence", "clause"):
                tp = fl = gold = docs = 0
                for text, (gs, ge) in mixed_documents(host, guest, kind, split):
                    spans = flagged(stage, text)
                    for t in tokens(text):
                        g, f = gs <= t[0] and t[1] <= ge, inside(t, spans)
                        tp += g and f
                        fl += f
                        gold += g
                    docs += 1
                rows.append((family, f"{host}←{guest}", kind, docs, tp, fl, gold))
                for key in (family, f"{family} {kind}", "all"):
                    totals[key][0] += tp
                    totals[key][1] += fl
                    totals[key][2] += gold
    print("| family | host←guest | inserted | docs | precision | recall |")
    print("|---|---|---|---|---|---|")
    for family, pair, kind, docs, tp, fl, gold in rows:
        print(f"| {family} | {pair} | {kind} | {docs} | {tp / max(1, fl):.3f} | {tp / max(1, gold):.3f} |")
    print("\n| subset | precision | recall | gold tokens |")
    print("|---|---|---|---|")
    for key in sorted(totals):
        tp, fl, gold = totals[key]
        print(f"| {key} | {tp / max(1, fl):.4f} | {tp / max(1, gold):.4f} | {gold} |")


def monolingual(split: str) -> None:
    stage = LanguageStage(LanguageStage.Options(action="tag"))
    removed = total = 0
    worst = []
    for path in sorted(SENTENCES.glob("*.txt")):
        lang = path.stem
        sents = lingua(lang, split)
        joiner = "" if lang in UNSPACED else " "
        lr = lt = 0
        for i in range(10):
            text = joiner.join(sents[i * 10 : i * 10 + 10])
            spans = flagged(stage, text)
            toks = tokens(text)
            lr += sum(inside(t, spans) for t in toks)
            lt += len(toks)
        removed += lr
        total += lt
        worst.append((lr / max(1, lt), lang))
    worst.sort(reverse=True)
    print(
        f"\nmonolingual lingua ({len(worst)} languages x 10 docs): {removed}/{total} tokens flagged = "
        f"{100 * removed / total:.3f}%; worst: " + ", ".join(f"{lang} {100 * r:.2f}%" for r, lang in worst[:5])
    )
    for name, path in PAGES.items():
        removed = total = docs = 0
        for line in path.open(encoding="utf-8"):
            rec = json.loads(line)
            if rec.get("lang_guess") != "en":
                continue
            spans = flagged(stage, rec["text"])
            toks = tokens(rec["text"])
            removed += sum(inside(t, spans) for t in toks) if spans else 0
            total += len(toks)
            docs += 1
        print(
            f"monolingual {name} English pages ({docs} docs): {removed}/{total} tokens flagged = "
            f"{100 * removed / total:.3f}%"
        )


def speed(repeat: int) -> None:
    texts = [json.loads(line)["text"] for path in PAGES.values() for line in path.open(encoding="utf-8")]
    mb = sum(len(t.encode()) for t in texts) / 1e6
    stage = LanguageStage()
    stage.process(Document(id="w", text="Warm up the detector with one short sentence here.", source="w"))

    cpu: list[float] = []

    def run_stage(docs: list[str]) -> float:
        started, started_cpu = time.perf_counter(), time.process_time()
        for i, t in enumerate(docs):
            stage.process(Document(id=str(i), text=t, source="s"))
        cpu.append(time.process_time() - started_cpu)
        return time.perf_counter() - started

    full = [run_stage(texts) for _ in range(repeat)]
    stats = stage.take_stats()
    print(
        f"\nstage on all {len(texts)} CC + trafilatura docs ({mb:.2f} MB): median {statistics.median(full):.2f} s "
        f"= {mb / statistics.median(full):.2f} MB/s wall, {mb / statistics.median(cpu):.2f} MB/s of CPU time "
        f"(wall runs: {', '.join(f'{x:.2f}' for x in full)}); langdetect calls per run "
        f"{stats['langdetect-calls'] // repeat}"
    )
    # The first run also builds what the stage keeps between documents (per-language word tables,
    # per-word caches, langdetect's profiles): the figure for a fresh process on this much text.
    print(f"first run alone (fresh stage and caches): {mb / cpu[0]:.2f} MB/s of CPU time")

    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    subset = texts[::10]
    smb = sum(len(t.encode()) for t in subset) / 1e6

    def every_sentence() -> float:
        DetectorFactory.seed = 0
        started = time.perf_counter()
        for t in subset:
            for s, e in stage._sentences(t):
                with contextlib.suppress(LangDetectException):
                    detect_langs(t[s:e])
        return time.perf_counter() - started

    ours, base = [], []
    for _ in range(repeat):
        ours.append(run_stage(subset))
        base.append(every_sentence())
    o, b = statistics.median(ours), statistics.median(base)
    print(
        f"side by side on every 10th doc ({len(subset)} docs, {smb:.2f} MB): stage {smb / o:.2f} MB/s, "
        f"langdetect on every sentence {smb / b:.3f} MB/s, ratio {b / o:.0f}x (medians of {repeat})"
    )


def check_sets() -> dict[str, list[str]]:
    """Texts whose outputs must not change with a speed-up: every CC + trafilatura document, the
    mixed documents of both splits and the monolingual lingua documents."""
    sets = {name: [json.loads(line)["text"] for line in path.open(encoding="utf-8")] for name, path in PAGES.items()}
    for split in ("test", "dev"):
        sets[f"mixed-{split}"] = [
            text
            for family in (CROSS, SAME)
            for host, guest in family
            for kind in ("sentence", "clause")
            for text, _ in mixed_documents(host, guest, kind, split)
        ]
        mono = []
        for path in sorted(SENTENCES.glob("*.txt")):
            sents = lingua(path.stem, split)
            joiner = "" if path.stem in UNSPACED else " "
            mono.extend(joiner.join(sents[i * 10 : i * 10 + 10]) for i in range(10))
        sets[f"mono-{split}"] = mono
    return sets


def stage_outputs() -> Iterator[dict]:
    """One record per (action, set, document): text, removals, meta; then the set's counters."""
    sets = check_sets()
    for action in ("remove", "tag"):
        for name, texts in sets.items():
            stage = LanguageStage(LanguageStage.Options(action=action))
            for i, text in enumerate(texts):
                doc = Document(id=str(i), text=text, source=name)
                stage.process(doc)
                removed = [[r.rule, r.text, r.lines, r.extra] for r in doc.removed]
                rejected = doc.rejected.reason if doc.rejected else None
                yield {
                    "action": action,
                    "set": name,
                    "id": i,
                    "text": doc.text if doc.text != text else None,
                    "removed": removed,
                    "meta": doc.meta,
                    "rejected": rejected,
                }
            yield {"action": action, "set": name, "id": "#stats", "stats": dict(sorted(stage.take_stats().items()))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", choices=["test", "dev"], default="test")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    recording.add_options(parser)
    args = parser.parse_args()
    if recording.run_requested(args, stage_outputs, ("action", "set", "id")):
        return
    if not args.skip_quality:
        quality(args.split)
        monolingual(args.split)
    if not args.skip_speed:
        speed(args.repeat)


if __name__ == "__main__":
    main()
