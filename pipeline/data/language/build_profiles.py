"""Build ``profiles.json``: small per-language word-frequency profiles for the `language` stage.

    python pipeline/data/language/build_profiles.py [../shared/corpora/lingua-sentences]

Built from the SECOND half of each lingua-sentences file only (lines n//2 onward); the benchmark
(`benchmarks/bench_language.py`) evaluates on the first half, so no evaluation sentence was seen.
For each language written with spaces between words (not zh/ja/ko/th), the most frequent words
that are written lowercase (so names like "Berlin" stay out), with their relative frequency.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import regex

TOP = 300
MIN_COUNT = 3
SKIP = {"zh", "ja", "ko", "th"}  # no spaces between words: the script check names them
MERGE = {"nb": "no", "nn": "no"}  # langdetect says "no" for both
WORD_RE = regex.compile(r"[\p{L}\p{M}]+(?:['’][\p{L}\p{M}]+)*")
SCRIPTS = ("Latin", "Cyrillic", "Greek", "Arabic", "Hebrew", "Armenian", "Georgian", "Devanagari", "Bengali")
SCRIPTS += ("Gurmukhi", "Gujarati", "Tamil", "Telugu")
SCRIPT_RES = [(name, regex.compile(rf"\p{{{name}}}")) for name in SCRIPTS]


def main() -> None:
    here = Path(__file__).resolve().parent
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else here.parents[3] / "shared" / "corpora" / "lingua-sentences"
    counts: dict[str, Counter[str]] = {}
    lower: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    scripts: dict[str, Counter[str]] = {}
    for path in sorted(src.glob("*.txt")):
        lang = MERGE.get(path.stem, path.stem)
        if lang in SKIP:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        c, lc, sc = (
            counts.setdefault(lang, Counter()),
            lower.setdefault(lang, Counter()),
            scripts.setdefault(lang, Counter()),
        )
        for line in lines[len(lines) // 2 :]:
            for w in WORD_RE.findall(line):
                totals[lang] += 1
                c[w.lower()] += 1
                # lowercase (also true for scripts without case) or one letter (English "I", "A")
                if w == w.lower() or len(w) == 1:
                    lc[w.lower()] += 1
                sc[_script(w[0])] += 1
    out = {}
    for lang in sorted(counts):
        # lowercase in at least 60% of its uses: function and common words, not names
        words = [(w, n) for w, n in counts[lang].most_common() if n >= MIN_COUNT and lower[lang][w] >= 0.6 * n]
        words = words[:TOP]
        total = totals[lang]
        out[lang] = {
            "script": scripts[lang].most_common(1)[0][0],
            "tokens": total,
            "covered": round(sum(n for _, n in words) / total, 4),
            "words": {w: round(n / total, 6) for w, n in words},
        }
    (here / "profiles.json").write_text(json.dumps(out, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"{len(out)} profiles -> {here / 'profiles.json'}")


def _script(ch: str) -> str:
    for name, pattern in SCRIPT_RES:
        if pattern.match(ch):
            return name
    return "Other"


if __name__ == "__main__":
    main()
