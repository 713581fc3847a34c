"""Session 19's compiled code-point kernels against the Python they replaced, on random strings.

Each check draws seeded random strings from a pool of trap characters (ß, İ, Σ/ς, ligatures, astral
characters, combining marks, every kind of space and line break, code-token signs) and compares a kernel
with its Python reference:

- language: ``_code_tokens`` with ``_CODE_TOKEN_RE.finditer``; ``_lowercase`` with ``str.lower`` (and, when it
  says it lowered character by character, every slice, and ``_lowercase_marked``'s start of the non-Latin scan
  with ``first_marked``); ``_clause_lists`` (compiled) with ``_clauses`` (the regex); ``_cleaned_text`` with
  the two regexes it replaced;
  ``_pair_scores`` with ``_scores`` of each sentence's words; ``run_weights`` with the numpy path;
  ``profile_choice`` with ``_row_scores`` + ``cheap_main`` + ``runner_up`` (tests/language_reference.py);
  ``_open_mark`` / ``_closing_mark`` / ``_quoted_span`` (stepping over the quotation marks) with ``open_mark`` /
  ``closing_mark`` (a character at a time, tests/language_reference.py) on strings of marks, letters and spaces;
- dedup: ``_nb_words`` folding as it reads with ``_nb_words`` of ``casefold_points`` (the base's way);
  ``line_unit_ranges`` (hard-wrapped test on code points) with ``unit_ranges`` of the lines;
- boilerplate: ``_line_rows`` (the compiled line index) gives two lines one row exactly when they strip alike;
  the line cache's numbered-item column (``line_facts``) with ``_NUMBERED_ITEM_RE``.

Run from the repo root: ``python benchmarks/kernel_fuzz.py [--seed N] [--n N]``; exit 1 on a mismatch.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # (language_reference: the Python the kernels replaced)

import numpy as np  # noqa: E402
from language_reference import cheap_main, closing_mark, open_mark, runner_up  # noqa: E402

from benchmarks.diff_check import SENTENCES  # noqa: E402
from pipeline.stages import dedup as D  # noqa: E402
from pipeline.stages import dedup_kernels as DK  # noqa: E402
from pipeline.stages import language as L  # noqa: E402
from pipeline.stages import language_kernels as LK  # noqa: E402
from pipeline.stages.boilerplate import BoilerplateStage  # noqa: E402

TRAPS = list("éßẞİıΣσςﬁﬀﬃÅǅ\u0301\u0345\u00a0\u2028\u3000\x1c\x85·٣ⅻΐᾼ") + ["😀", "𝐀", "𠀀", "𐐀", "ǰ", "ŉ"]
CODE = list(" _/\\=<>{}[]|#$.:->") + ["::", "->", "foo_bar", "x.y"]
ASCII = list("abcxyzABCXYZ019 .,!?\n\t\r")


class Checks:
    def __init__(self, seed: int, n: int) -> None:
        self.r = random.Random(seed)
        self.n = n
        self.bad = 0
        self.counts: dict[str, int] = {}

    def rnd(self, pool: list[str], low: int, high: int) -> str:
        return "".join(self.r.choice(pool) for _ in range(self.r.randint(low, high)))

    def fail(self, what: str, detail: object) -> None:
        self.bad += 1
        if self.bad <= 10:
            print(f"MISMATCH {what}: {detail!r}"[:500])

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def language_strings(self) -> None:
        latin_re, other_re = re.compile("[A-z]"), re.compile("[^\x00-\u02ff]")
        for _ in range(self.n):
            t = self.rnd(ASCII + TRAPS + CODE, 0, 40)
            cps = L.code_points(t)
            if [tuple(x) for x in L._code_tokens(t, cps)] != [m.span() for m in L._CODE_TOKEN_RE.finditer(t)]:
                self.fail("code_tokens", t)
            low, low_cps, per_char = L._lowercase(t, cps)
            if low != t.lower() or low_cps.tolist() != list(map(ord, t.lower())):
                self.fail("lowercase", t)
            if per_char and any(t[s:e].lower() != low[s:e] for s in range(len(t)) for e in range(s, len(t) + 1, 5)):
                self.fail("lowercase slices", t)
            marked = L._lowercase_marked(t, cps)[3]
            if marked != (LK.first_marked(low_cps, L._non_latin_letters(), 0) if per_char else None):
                self.fail("lowercase's non-Latin scan start", t)
            old = t
            if not t.isascii() and 2 * len(latin_re.findall(t)) < len(other_re.findall(t)):
                old = latin_re.sub("", t)
            if L._cleaned_text(t) != old:
                self.fail("cleaned_text", t)
            self.count("language strings")

    def quote_marks(self) -> None:
        marks = sorted({c for k, v in L._QUOTE_PAIRS.items() for c in k + v})
        pool = marks * 2 + list("ab1 .!?\t\n\xa0") + ["'", "’", "word", "x"]
        for _ in range(self.n):
            t = self.rnd(pool, 0, 30)
            s = self.r.randint(0, len(t))
            e = self.r.randint(s, len(t))
            if L._open_mark(t, s, e) != open_mark(t, s, e):
                self.fail("open_mark", (t, s, e))
            opener = self.r.choice(list(L._QUOTE_PAIRS))
            closers = L._QUOTE_PAIRS[opener]
            if L._closing_mark(t, s, e, opener, closers) != closing_mark(t, s, e, opener, closers):
                self.fail("closing_mark", (t, s, e, opener))
            self.count("quote marks")

    def urls(self) -> None:
        pool = ["http://", "https://", "ftp://", "www.", "://", "http", "https", "ftp", "ww", "w", ".", "/"]
        pool += [" ", "\n", "\t", '"', "'", "<", ">", "“", "”", "\u3000", "a", "b.c", "é", "😀", "ht", "tp", "s"]
        for _ in range(self.n):
            t = self.rnd(pool, 0, 14)
            if L._urls(t) != [m.span() for m in L._URL_RE.finditer(t)]:
                self.fail("urls", t)
            self.count("urls")

    def clauses(self) -> None:
        spaces = [c for c in map(chr, range(0x3001)) if L._CLAUSE_SPLIT_RE.fullmatch(c + "'")]
        pool = list(",;:()[]{}“”„\"«»‹›「」'’-–—.!?") + spaces + ["a", "bc", "é", "😀", " ", " - ", " '", "' "]
        for _ in range(self.n):
            t = self.rnd(pool, 0, 24)
            spans = [(0, len(t))] + [tuple(sorted((self.r.randint(0, len(t)), self.r.randint(0, len(t)))))]
            if L._clause_lists(L.code_points(t), spans) != [L._clauses(t, a, b) for a, b in spans]:
                self.fail("clauses", (t, spans))
            self.count("clauses")

    def language_texts(self) -> None:
        sentences = {
            p.stem: [s for s in p.read_text(encoding="utf-8").splitlines() if s]
            for p in sorted(SENTENCES.glob("*.txt"))
        }
        stage = L.LanguageStage()
        r = self.r
        for _ in range(self.n // 10):
            langs = r.sample(sorted(sentences), r.randint(1, 3))
            parts = []
            for _ in range(r.randint(1, 6)):
                words = r.choice(sentences[r.choice(langs)]).split(" ")
                for _ in range(r.randint(0, 3)):
                    words.insert(r.randint(0, len(words)), r.choice(TRAPS + CODE) + r.choice(words))
                s = " ".join(words)
                s = s.upper() if r.random() < 0.15 else s
                parts.append(s)
            text = r.choice([" ", "\n", "  "]).join(parts)
            cps = L.code_points(text)
            rows = L._run_rows(text, cps)
            if list(L.LanguageStage._weights_of_rows(text, rows).items()) != list(
                L.LanguageStage._weights_of_rows(text, rows, cps).items()
            ):
                self.fail("run_weights", text)
            self.count("language texts")
            low, low_cps, per_char = L._lowercase(text, cps)
            for script in ("Latin", "Cyrillic", "Greek", "Arabic"):
                table = L._score_table(script)
                srows = L._sample_rows(low, L.code_points(low), script)
                scores, hits = L._row_scores(srows, table)
                want = cheap_main(len(srows), scores, hits)
                j, top, second, best_hits, runner, only_runner, only_best = LK.profile_choice(
                    srows, table.ptr, table.langs, table.deltas, table.oov, L._name_ranks(script)
                )
                if stage._cheap_choice(len(srows), j, top, second, best_hits, table.names) != want:
                    self.fail("profile_choice", (script, text))
                if want[0] is not None and runner_up(scores, want[0]) != (table.names[runner] if runner >= 0 else None):
                    self.fail("profile_choice runner-up", (script, text))
                if runner >= 0:
                    words = {v for w in low.split() if (v := w.strip(L._STRIP)).isalpha()}
                    best, second_name = table.names[j], table.names[runner]
                    if (only_runner, only_best) != (
                        stage._distinct_hits(words, second_name, best),
                        stage._distinct_hits(words, best, second_name),
                    ):
                        self.fail("profile_choice distinct hits", (script, text))
                if not per_char or len(table.names) < 2:
                    continue
                mine, theirs = r.sample(list(table.names), 2)
                spans = stage._sentences(text, 0, len(text))
                pairs = L._pair_scores(low_cps, spans, script, mine, theirs)
                if pairs is None:
                    continue
                for k, (s, e) in enumerate(spans):
                    words = [v for w in text[s:e].lower().split() if (v := w.strip(L._STRIP)).isalpha()]
                    sc, _ = stage._scores(words, script)
                    if [sc.get(mine, -math.inf), sc.get(theirs, -math.inf)] != list(pairs[k]):
                        self.fail("pair_scores", (script, mine, theirs, text[s:e]))
                self.count("pair_scores texts")

    def dedup_words(self) -> None:
        fold, several = D._fold_tables()
        pool = ASCII + TRAPS + ["ss", "fi", "10:32", "日本語", "กขค", "'", "-"]
        for strip, digits in ((True, True), (False, False), (True, False)):
            is_sep, mapping = D._char_tables(strip, digits)
            table = mapping if mapping is not None else D._NO_MAPPING
            lut = D._nb_word_lut(is_sep, table, mapping is not None, D._written_breaks(), D._solo_table(), fold)
            for _ in range(self.n // 3):
                cp = D._codepoints(self.rnd(pool, 0, 50))
                for solo in (True, False):
                    args = (is_sep, table, mapping is not None, D._written_breaks(), D._solo_table(), solo)
                    # folded as read, through the table, against the base's way (a folded copy, no table)
                    a = D._nb_words(cp, *args, fold, several, lut)
                    b = D._nb_words(DK.casefold_points(cp, fold, several), *args, D._NO_FOLD, D._NO_SEVERAL, D._NO_LUT)
                    if not all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)):
                        self.fail("dedup words folded as read", cp.tobytes().decode("utf-32-le"))
                self.count("dedup word texts")

    def dedup_units(self) -> None:
        words = ["alpha", "beta", "ß", "😀", "x.", "y!", "»", "”", "z)"]
        ends = ["", " ", "\t", "\u00a0", "\u3000", "\x1c", "\r", "\u2028", "\x85", "\u200b", ".", ". ", ".\u00a0", "。"]
        r = self.r
        for _ in range(self.n // 4):
            lines = []
            for _ in range(r.randint(1, 12)):
                if r.random() < 0.15:
                    lines.append(r.choice(["", " ", "\t", "\u00a0"]))
                    continue
                size, s = r.randint(25, 125), ""
                while len(s) < size:
                    s += r.choice(words) + " "
                lines.append(s[:size].rstrip(" ") + r.choice(ends))
            text = "\n".join(lines)
            cp = D._codepoints(text)
            for unit in ("auto", "paragraph", "line"):
                a = D.unit_ranges(text.split("\n"), unit)
                b = DK.line_unit_ranges(
                    cp, D._space_table(), D._SENTENCE_END_POINTS, unit != "paragraph", unit == "auto"
                )
                if not (np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])):
                    self.fail("dedup unit ranges", (unit, text))
            self.count("dedup unit texts")

    def boilerplate_rows(self) -> None:
        stage = BoilerplateStage()
        pool = ["a", "b", "ß", " ", "\t", "\u00a0", "\u3000", "\x1c", "\x85", "\u2028", "\r", "\u200b", "😀", "İ"]
        r = self.r
        for _ in range(self.n // 10):
            sizes = [0, 1, 2, 3, 5, 400, 401]  # (lines over 400 characters are not cached)
            lines = ["".join(r.choices(pool, k=r.choice(sizes))) for _ in range(r.randint(1, 30))]
            rows = stage._line_rows(lines)[0].tolist()
            seen: dict[int, str] = {}
            for line, row in zip(lines, rows, strict=True):
                s = line.strip()
                if (row == 0) != (not s):
                    self.fail("line row of a blank line", line)
                if s and seen.setdefault(row, s) != s:
                    self.fail("two lines one row", (seen[row], s))
            by_line: dict[str, int] = {}
            for line, row in zip(lines, rows, strict=True):
                s = line.strip()
                cached = s and len(s) <= 400 and max(map(ord, s)) < 0x10000  # one row a document
                if cached and by_line.setdefault(s, row) != row:
                    self.fail("one line two rows", s)
            self.count("boilerplate documents")

    def boilerplate_numbered(self) -> None:
        """The line cache's numbered-item column (line_facts' _numbered_item) against _NUMBERED_ITEM_RE."""
        from pipeline.stages import boilerplate as B
        from pipeline.stages import boilerplate_kernels as K

        stage = BoilerplateStage()
        heads = ["1", "12", "123", "1234", "٣", "²", "0", "", "a"]
        pool = [".", ")", ":", " ", "\t", "\u00a0", "\x85", "\u2028", "x", "😀", "İ", "9"]
        for _ in range(self.n // 10):
            lines = [self.r.choice(heads) + self.rnd(pool, 0, 6) for _ in range(self.r.randint(1, 30))]
            rows, cols, *_ = stage._line_rows(lines)
            for line, got in zip(lines, cols[rows, K.LC_NUMBERED].tolist(), strict=True):
                if bool(got) != (B._NUMBERED_ITEM_RE.match(line.strip()) is not None):
                    self.fail("numbered item column", line)
            self.count("boilerplate numbered documents")

    def run_all(self) -> None:
        """Every check, in order."""
        for step in (
            self.language_strings,
            self.quote_marks,
            self.urls,
            self.clauses,
            self.language_texts,
            self.dedup_words,
            self.dedup_units,
            self.boilerplate_rows,
            self.boilerplate_numbered,
        ):
            step()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=5000, help="random strings per check (fewer for the slower ones)")
    args = ap.parse_args(argv)
    checks = Checks(args.seed, args.n)
    checks.run_all()
    print(", ".join(f"{k}: {v}" for k, v in checks.counts.items()), f"- mismatches: {checks.bad}")
    return 1 if checks.bad else 0


if __name__ == "__main__":
    sys.exit(main())
