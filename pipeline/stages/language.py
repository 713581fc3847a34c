"""Language stage: find a document's main language and take out fragments in other languages.

Two checks, cheap first:

* **Script check.** Letters are grouped into runs by Unicode script (``regex`` ``\\p{Han}``,
  ``\\p{Cyrillic}``, ...). Runs of a script outside the document's main script group, together with
  the neutral characters (spaces, digits, punctuation, CJK punctuation) between and around them,
  form a candidate fragment, flagged when it is long enough: ``min_cjk_chars`` Han/Kana/Hangul
  characters, or ``min_words`` words for alphabetic scripts. Japanese (Han + Kana) and Korean
  (Hangul + Han) are one group each. Latin inside a non-Latin text (names, brands, URLs) is only
  flagged when it looks like a sentence.
* **Same-script check.** Sentences of at least ``min_langdetect_words`` words that a cheap signal
  marks as possibly foreign (none of the main language's frequent function words, or more of
  another language's distinctive ones; for CJK text, the wrong kana/hangul mix) go to langdetect,
  and are flagged only when it names another language with probability >= ``langdetect_min_prob``.

Flagged fragments are removed (``action: remove``), listed in ``doc.meta["language_fragments"]``
(``tag``) or only counted (``keep``).
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

import regex
import yaml
from pydantic import Field

from pipeline.document import Document
from pipeline.stages.base import Stage, StageOptions

# Scripts we recognise by name; letters of any other script are "Other". Hiragana and Katakana
# (plus the prolonged sound mark, which is Common) are one "Kana" script.
_SCRIPT_CLASSES: dict[str, str] = {
    "Latin": r"\p{Latin}",
    "Cyrillic": r"\p{Cyrillic}",
    "Greek": r"\p{Greek}",
    "Arabic": r"\p{Arabic}",
    "Hebrew": r"\p{Hebrew}",
    "Han": r"\p{Han}",
    "Kana": r"\p{Hiragana}\p{Katakana}\u30fc",
    "Hangul": r"\p{Hangul}",
    "Devanagari": r"\p{Devanagari}",
    "Bengali": r"\p{Bengali}",
    "Gurmukhi": r"\p{Gurmukhi}",
    "Gujarati": r"\p{Gujarati}",
    "Tamil": r"\p{Tamil}",
    "Telugu": r"\p{Telugu}",
    "Kannada": r"\p{Kannada}",
    "Malayalam": r"\p{Malayalam}",
    "Sinhala": r"\p{Sinhala}",
    "Thai": r"\p{Thai}",
    "Lao": r"\p{Lao}",
    "Khmer": r"\p{Khmer}",
    "Myanmar": r"\p{Myanmar}",
    "Tibetan": r"\p{Tibetan}",
    "Georgian": r"\p{Georgian}",
    "Armenian": r"\p{Armenian}",
    "Ethiopic": r"\p{Ethiopic}",
}
_CJK = frozenset({"Han", "Kana", "Hangul"})
# Scripts written without spaces between words: word counts are estimated from letters.
_UNSPACED = frozenset({"Thai", "Lao", "Khmer", "Myanmar", "Tibetan"})
# Scripts that name their language (no langdetect call needed for a fragment).
_SCRIPT_LANGUAGE = {
    "Han": "zh",
    "Kana": "ja",
    "Hangul": "ko",
    "Greek": "el",
    "Hebrew": "he",
    "Thai": "th",
    "Georgian": "ka",
    "Armenian": "hy",
    "Bengali": "bn",
    "Gujarati": "gu",
    "Gurmukhi": "pa",
    "Tamil": "ta",
    "Telugu": "te",
    "Kannada": "kn",
    "Malayalam": "ml",
    "Sinhala": "si",
    "Lao": "lo",
    "Khmer": "km",
    "Myanmar": "my",
    "Tibetan": "bo",
    "Ethiopic": "am",
}
# langdetect codes -> the ISO 639-1 codes we record.
_LANG_ALIASES = {"zh-cn": "zh", "zh-tw": "zh", "nb": "no", "nn": "no"}

_RUN_RE = regex.compile(
    "|".join(f"(?P<{name}>[{cls}][{cls}\\p{{Inherited}}]*)" for name, cls in _SCRIPT_CLASSES.items())
    + r"|(?P<Other>(?![\p{Common}\p{Inherited}])\p{L}[\p{Inherited}]*)"
)
# Spans whose letters never count: URLs, e-mail addresses, code-like tokens.
_OPAQUE_RE = regex.compile(
    r"""(?:https?://|ftp://|www\.)[^\s<>"'“”]+"""
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|\b[A-Za-z0-9_]+(?:[_/\\=<>{}\[\]|#$]|::|->|\.(?=[a-z_]))[A-Za-z0-9_/\\=<>{}\[\]|#$.:>-]*"
)
_WORD_RE = regex.compile(r"[\p{L}\p{M}]+(?:['’][\p{L}\p{M}]+)*")
_LETTER_OR_DIGIT_RE = regex.compile(r"[\p{L}\p{N}]")
# Sentence boundaries: after . ! ? … (+ closing quotes) before a space or glued to a capital
# ("situation.”Putin", "stage.He"), after CJK 。！？, and at newlines.
_SENTENCE_END_RE = regex.compile(
    r"[.!?…]+[\"”’»)\]]*(?=\s)"
    r"|(?<=\p{Ll}{2})[.!?]+[\"”’»]*(?=[\"“„«]?\p{Lu})"
    r"|[。！？!?]+[」』”’）)]*"
    r"|\n"
)
# One or two capitalised/code words closing a sentence right after a foreign run.
_TRAILING_NAMES_RE = regex.compile(
    r"((?:[ \t]+[\p{Lu}\d][\w+#-]*){1,2})(?=[.!?…]*(?:\s*$|\s+[\p{Lu}\p{Lo}\d\"“„«(\[]|\n))"
)
_CJK_PUNCT = "。．，、！？；：…‥〜～・"
_STRAY_CJK_PUNCT_RE = regex.compile(r"[。，、！？；：]+")
_OPENERS = {
    "(": ")",
    "[": "]",
    "{": "}",
    "（": "）",
    "「": "」",
    "『": "』",
    "【": "】",
    "《": "》",
    "〈": "〉",
    "〔": "〕",
    "“": "”",
    "„": "“",
    "«": "»",
    "‘": "’",
    '"': '"',
    "'": "'",
}
_CLOSERS = {v: k for k, v in _OPENERS.items()}
_TERMINAL_PUNCT = ".!?…,;:"

_detect_lock = threading.Lock()


def _load_yaml(name: str) -> dict:
    path = resources.files("pipeline").joinpath("data", "language", name)
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _function_words() -> dict[str, frozenset[str]]:
    data = _load_yaml("function_words.yaml")
    return {str(lang): frozenset(str(w).lower() for w in words) for lang, words in data.items()}


@lru_cache(maxsize=1)
def _alphabets() -> dict[str, frozenset[str]]:
    return {str(lang): frozenset(str(letters)) for lang, letters in _load_yaml("alphabets.yaml").items()}


def _factory():
    """langdetect's global factory, loaded on first use (profiles take ~0.5 s to read)."""
    from langdetect import detector_factory

    detector_factory.init_factory()
    return detector_factory._factory


def _norm_lang(code: str) -> str:
    return _LANG_ALIASES.get(code, code)


@dataclass(slots=True)
class _Run:
    start: int
    end: int
    script: str


@dataclass(slots=True)
class _Fragment:
    start: int
    end: int
    kind: str  # "script" or "langdetect"
    label: str  # script (lowercase) or language code
    language: str


class LanguageStage(Stage):
    """Detect the main language; remove, tag or count fragments in other languages/scripts."""

    name = "language"

    class Options(StageOptions):
        action: Literal["remove", "tag", "keep"] = Field(
            "remove",
            description="What to do with a foreign fragment: remove it, tag it in "
            "meta.language_fragments, or keep it and only count it.",
        )
        languages: list[str] = Field(
            [],
            description="Keep only documents whose main language (ISO 639-1) is listed; empty keeps all.",
        )
        main_languages_max: int = Field(
            1,
            ge=1,
            le=3,
            description="How many main languages a document may have (2 keeps both halves of a "
            "bilingual text instead of stripping one as foreign).",
        )
        second_language_min_share: float = Field(
            0.3,
            gt=0.0,
            le=0.5,
            description="Share of the text a further language/script needs to count as a main "
            "language (used when main_languages_max > 1).",
        )
        sample_chars: int = Field(
            3000, ge=200, description="Characters of the text sampled to detect the main language."
        )
        min_cjk_chars: int = Field(
            4, ge=1, description="Han/Kana/Hangul characters a run needs to be a foreign fragment."
        )
        min_words: int = Field(
            3, ge=1, description="Words (2+ letters) a run of an alphabetic script needs to be a foreign fragment."
        )
        same_script: bool = Field(
            True, description="Also look for foreign sentences in the main script (uses langdetect)."
        )
        min_langdetect_words: int = Field(
            8, ge=1, description="Words a sentence needs before langdetect is asked about it."
        )
        langdetect_min_prob: float = Field(
            0.99,
            ge=0.0,
            le=1.0,
            description="langdetect probability needed to call a same-script sentence foreign.",
        )
        seed: int = Field(0, description="Seed for langdetect, so results are reproducible.")

    options: Options

    def __init__(self, options: Options | None = None) -> None:
        super().__init__(options)
        self.function_words = _function_words()
        # word -> languages whose list has it
        index: dict[str, set[str]] = {}
        for lang, words in self.function_words.items():
            for w in words:
                index.setdefault(w, set()).add(lang)
        self.word_langs = {w: frozenset(langs) for w, langs in index.items()}
        alphabets = _alphabets()
        # letters language a has and language b lacks
        self.extra_letters = {(a, b): alphabets[a] - alphabets[b] for a in alphabets for b in alphabets if a != b}
        self.allowed = [_norm_lang(x.lower()) for x in self.options.languages]

    # ------------------------------------------------------------------ langdetect
    def _detect(self, text: str) -> list[tuple[str, float]]:
        """langdetect probabilities (seeded, deterministic); [] when it finds no features."""
        from langdetect import DetectorFactory
        from langdetect.lang_detect_exception import LangDetectException

        with _detect_lock:
            factory = _factory()
            DetectorFactory.seed = self.options.seed
            detector = factory.create()
            detector.seed = self.options.seed
            detector.append(text)
            self.stat_update("langdetect-calls")
            try:
                probs = detector.get_probabilities()
            except LangDetectException:
                return []
        merged: dict[str, float] = {}
        for p in probs:
            code = _norm_lang(p.lang)
            merged[code] = merged.get(code, 0.0) + p.prob
        return sorted(merged.items(), key=lambda kv: -kv[1])

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _runs(text: str) -> list[_Run]:
        opaque = [(m.start(), m.end()) for m in _OPAQUE_RE.finditer(text)]
        runs: list[_Run] = []
        j = 0
        for m in _RUN_RE.finditer(text):
            s = m.start()
            while j < len(opaque) and opaque[j][1] <= s:
                j += 1
            if j < len(opaque) and opaque[j][0] <= s < opaque[j][1]:
                continue
            script = m.lastgroup or "Other"
            if runs and runs[-1].script == script and runs[-1].end == s:
                runs[-1].end = m.end()
            else:
                runs.append(_Run(s, m.end(), script))
        return runs

    @staticmethod
    def _weights(runs: list[_Run]) -> dict[str, float]:
        counts: dict[str, float] = {}
        for r in runs:
            # a Han/Kana/Hangul character carries about as much as two alphabetic letters
            counts[r.script] = counts.get(r.script, 0.0) + (r.end - r.start) * (2 if r.script in _CJK else 1)
        return counts

    @staticmethod
    def _group(script: str, counts: dict[str, float]) -> frozenset[str]:
        if script in ("Han", "Kana"):
            han, kana = counts.get("Han", 0.0), counts.get("Kana", 0.0)
            if script == "Kana" or kana >= 0.25 * (han + kana):
                return frozenset({"Han", "Kana"})
            return frozenset({"Han"})
        if script == "Hangul":
            return frozenset({"Hangul", "Han"})
        return frozenset({script})

    def _main_scripts(self, counts: dict[str, float]) -> tuple[str, frozenset[str]]:
        if not counts:
            return "und", frozenset()
        total = sum(counts.values())
        ranked = sorted(counts, key=lambda s: -counts[s])
        primary = ranked[0]
        main = set(self._group(primary, counts))
        groups = 1
        for script in ranked[1:]:
            if groups >= self.options.main_languages_max:
                break
            if script in main:
                continue
            if counts[script] / total >= self.options.second_language_min_share:
                main |= self._group(script, counts)
                groups += 1
        return primary, frozenset(main)

    def _hits(self, words: list[str]) -> dict[str, int]:
        hits: dict[str, int] = {}
        for w in words:
            for lang in self.word_langs.get(w, ()):
                hits[lang] = hits.get(lang, 0) + 1
        return hits

    def _distinct_hits(self, words: list[str], lang: str, other: str) -> int:
        """Words of `lang`'s list that are not in `other`'s list."""
        mine, theirs = self.function_words.get(lang, frozenset()), self.function_words.get(other, frozenset())
        return sum(1 for w in words if w in mine and w not in theirs)

    def _score(self, words: list[str], letters: dict[str, int], lang: str, other: str) -> float:
        """Evidence for `lang` against `other`: its distinctive function words, plus half a point per
        letter of its alphabet that `other` lacks (at most 3 points)."""
        extra = self.extra_letters.get((lang, other), ())
        n = sum(letters.get(c, 0) for c in extra)
        return self._distinct_hits(words, lang, other) + min(n, 6) / 2

    def _main_languages(
        self, text: str, runs: list[_Run], primary_script: str, main_scripts: frozenset[str], group: frozenset[str]
    ) -> list[str]:
        if "Kana" in group:
            langs = ["ja"]
        elif "Hangul" in group:
            langs = ["ko"]
        elif group == frozenset({"Han"}):
            langs = ["zh"]
        elif primary_script in _SCRIPT_LANGUAGE:
            langs = [_SCRIPT_LANGUAGE[primary_script]]
        else:
            langs = []
        # the sample keeps only the main script's letters, so foreign fragments do not sway it
        limit = self.options.sample_chars
        pieces, pos = [], 0
        for r in runs:
            if r.start >= limit:
                break
            if r.script not in main_scripts and r.script not in group:
                pieces.append(text[pos : r.start])
                pieces.append(" ")
                pos = r.end
        pieces.append(text[pos:limit] if pos < limit else "")
        sample = "".join(pieces)
        if langs and self.options.main_languages_max == 1:
            return langs
        probs = self._detect(sample)
        if not probs:
            return langs or ["und"]
        if not langs:
            langs = [probs[0][0]]
        if self.options.main_languages_max > 1:
            share = self.options.second_language_min_share
            words = [w.lower() for w in _WORD_RE.findall(sample)]
            hits = self._hits(words)
            for lang, p in probs[1:]:
                if len(langs) >= self.options.main_languages_max:
                    break
                distinct = self._distinct_hits(words, lang, langs[0])
                main_distinct = self._distinct_hits(words, langs[0], lang)
                by_words = lang in self.function_words and distinct >= share * (distinct + main_distinct) > 0
                if p >= share or (by_words and hits.get(lang, 0) >= 3):
                    langs.append(lang)
            # a second script group (e.g. Latin + Cyrillic halves): name its language too
            for script in sorted(main_scripts - group):
                if len(langs) >= self.options.main_languages_max:
                    break
                if script in _SCRIPT_LANGUAGE:
                    lang = _SCRIPT_LANGUAGE[script]
                else:
                    own = " ".join(text[r.start : r.end] for r in runs if r.script == script)
                    found = self._detect(own[:limit])
                    lang = found[0][0] if found else "und"
                if lang not in langs:
                    langs.append(lang)
        return langs

    # ------------------------------------------------------------------ script check
    def _word_count(self, text: str, runs: list[_Run]) -> int:
        n = 0
        for r in runs:
            length = r.end - r.start
            if r.script in _UNSPACED:
                n += max(1, length // 4)
            elif length >= 2:
                n += 1
        return n

    def _sentence_like(self, text: str, runs: list[_Run]) -> bool:
        words = [text[r.start : r.end] for r in runs if r.end - r.start >= 2]
        if len(words) < self.options.min_words:
            return False
        lower = sum(1 for w in words if w.islower())
        return lower >= 0.5 * len(words)

    def _flag_cluster(self, text: str, cluster: list[_Run], main_scripts: frozenset[str]) -> bool:
        scripts = {r.script for r in cluster}
        if scripts & _CJK:
            cjk = sum(r.end - r.start for r in cluster if r.script in _CJK)
            return cjk >= self.options.min_cjk_chars
        if scripts == {"Latin"} and "Latin" not in main_scripts:
            return self._sentence_like(text, cluster)
        return self._word_count(text, cluster) >= self.options.min_words

    @staticmethod
    def _extend(text: str, s: int, e: int, cjk: bool) -> tuple[int, int]:
        """Grow [s, e) over the punctuation that belongs to the fragment."""
        n = len(text)

        def unmatched_open(seg: str, closer: str) -> bool:
            opener = _CLOSERS[closer]
            if opener == closer:
                return seg.count(opener) % 2 == 1
            return seg.count(opener) > seg.count(closer)

        changed = True
        while changed:
            changed = False
            # leading digits glued to a CJK run ("1969年")
            if cjk:
                k = s
                while k > 0 and (text[k - 1].isdigit() or (text[k - 1] in ",." and k > 1 and text[k - 2].isdigit())):
                    k -= 1
                if k < s and (k == 0 or not _LETTER_OR_DIGIT_RE.match(text[k - 1])):
                    s, changed = k, True
            # trailing punctuation attached to the fragment (no spaces)
            while e < n:
                c = text[e]
                if (
                    (cjk and c in _CJK_PUNCT)
                    or c in _TERMINAL_PUNCT
                    or (c in _CLOSERS and unmatched_open(text[s:e], c))
                ):
                    e += 1
                    changed = True
                else:
                    break
            # a matching opener/closer pair around the fragment
            if s > 0 and e < n and text[s - 1] in _OPENERS and _OPENERS[text[s - 1]] == text[e]:
                s, e = s - 1, e + 1
                changed = True
        return s, e

    def _script_fragments(
        self, text: str, runs: list[_Run], main_scripts: frozenset[str]
    ) -> list[tuple[int, int, str]]:
        clusters: list[list[_Run]] = []
        current: list[_Run] = []
        pending_bridge: _Run | None = None
        for r in runs:
            foreign = r.script not in main_scripts
            if foreign:
                if current:
                    gap = text[current[-1].end : r.start]
                    same_group = (r.script in _CJK) == (current[-1].script in _CJK)
                    if "\n" in gap or not same_group:
                        clusters.append(current)
                        current = []
                current.append(r)
                pending_bridge = None
            elif current and pending_bridge is None and self._bridgeable(text, current, r):
                pending_bridge = r  # one capitalised name inside a foreign sentence ("Apple")
            else:
                if current:
                    clusters.append(current)
                current, pending_bridge = [], None
        if current:
            clusters.append(current)

        found: list[tuple[int, int, str]] = []
        for cluster in clusters:
            if not self._flag_cluster(text, cluster, main_scripts):
                continue
            scripts = [r.script for r in cluster]
            if "Hangul" in scripts:
                label = "Hangul"
            elif "Kana" in scripts:
                label = "Kana"
            else:
                weights: dict[str, int] = {}
                for r in cluster:
                    weights[r.script] = weights.get(r.script, 0) + r.end - r.start
                label = max(weights, key=lambda k: weights[k])
            cjk = bool(set(scripts) & _CJK)
            end = cluster[-1].end
            if not cjk and (m := _TRAILING_NAMES_RE.match(text, end)):
                end = m.end(1)  # "... для Mac OSX." - names ending a foreign sentence
            s, e = self._extend(text, cluster[0].start, end, cjk)
            found.append((s, e, label))
        return found

    @staticmethod
    def _bridgeable(text: str, current: list[_Run], r: _Run) -> bool:
        last = current[-1]
        if last.script in _CJK or last.script in _UNSPACED:
            return False
        word = text[r.start : r.end]
        return (
            r.end - r.start <= 20
            and word[:1].isupper()
            and "\n" not in text[last.end : r.start]
            and len(text[last.end : r.start]) <= 3
        )

    def _stray_punct(self, text: str, runs: list[_Run], taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Lone CJK punctuation (e.g. "Technology.。The") in a text with no CJK letters near it."""
        found = []
        starts = [r.start for r in runs]
        for m in _STRAY_CJK_PUNCT_RE.finditer(text):
            if any(s <= m.start() < e for s, e in taken):
                continue
            i = bisect.bisect_left(starts, m.start())
            before = runs[i - 1] if i > 0 else None
            after = runs[i] if i < len(runs) else None
            if any(x is not None and x.script in _CJK for x in (before, after)):
                continue
            found.append((m.start(), m.end()))
        return found

    # ------------------------------------------------------------------ same-script check
    def _sentences(self, text: str) -> list[tuple[int, int]]:
        spans = []
        start = 0
        for m in _SENTENCE_END_RE.finditer(text):
            spans.append((start, m.end()))
            start = m.end()
        spans.append((start, len(text)))
        out = []
        for s, e in spans:
            while s < e and text[s].isspace():
                s += 1
            while e > s and text[e - 1].isspace():
                e -= 1
            if e > s:
                out.append((s, e))
        return out

    def _same_script_fragments(
        self,
        text: str,
        runs: list[_Run],
        main_langs: list[str],
        main_scripts: frozenset[str],
        taken: list[tuple[int, int]],
    ) -> list[tuple[int, int, str]]:
        main = main_langs[0]
        cjk_host = bool(main_scripts & _CJK)
        if not cjk_host and main not in self.function_words:
            self.stat_update(f"same-script-skipped-{main}")
            return []
        host_scripts = _host_scripts(main_scripts)
        starts = [r.start for r in runs]
        found = []
        opt = self.options
        for s, e in self._sentences(text):
            if any(s < te and ts < e for ts, te in taken):
                continue
            i, j = bisect.bisect_left(starts, s), bisect.bisect_left(starts, e)
            sent_runs = runs[i:j]
            letters: dict[str, int] = {}
            for r in sent_runs:
                letters[r.script] = letters.get(r.script, 0) + r.end - r.start
            total = sum(letters.values())
            if not total or sum(v for k, v in letters.items() if k in host_scripts) < 0.8 * total:
                continue
            sentence = text[s:e]
            if cjk_host:
                cjk_chars = sum(v for k, v in letters.items() if k in _CJK)
                kana, hangul = letters.get("Kana", 0), letters.get("Hangul", 0)
                if main_scripts == frozenset({"Han"}):
                    candidate = kana >= 2 and cjk_chars >= opt.min_cjk_chars
                elif "Kana" in main_scripts:
                    candidate = kana == 0 and cjk_chars >= 2 * opt.min_langdetect_words + 4
                else:
                    candidate = hangul == 0 and cjk_chars >= 2 * opt.min_langdetect_words
                if not candidate:
                    continue
                words: list[str] = []
            else:
                words = [w.lower() for w in _WORD_RE.findall(sentence)]
                if len(words) < opt.min_langdetect_words:
                    continue
                hits = self._hits(words)
                chars: dict[str, int] = {}
                for c in sentence.lower():
                    chars[c] = chars.get(c, 0) + 1
                candidate = hits.get(main, 0) == 0
                for o in self.function_words:
                    if candidate:
                        break
                    if o != main:
                        theirs = self._score(words, chars, o, main)
                        candidate = theirs >= 2 and theirs > self._score(words, chars, main, o)
                if not candidate:
                    continue
            self.stat_update("same-script-candidates")
            probs = self._detect(sentence)
            if not probs:
                continue
            lang, p = probs[0]
            if lang in main_langs or p < opt.langdetect_min_prob:
                continue
            if not cjk_host:
                if lang in self.function_words:
                    if self._score(words, chars, lang, main) <= self._score(words, chars, main, lang):
                        continue
                elif hits.get(main, 0):
                    continue
            found.append((s, e, lang))
        return found

    # ------------------------------------------------------------------ main
    def process(self, doc: Document) -> None:
        text = doc.text
        runs = self._runs(text)
        counts = self._weights(runs)
        primary_script, main_scripts = self._main_scripts(counts)
        doc.meta["script"] = primary_script
        if primary_script == "und":
            doc.meta["language"] = "und"
            self.stat_update("main-language-und")
            if self.allowed:
                self.stat_update("doc-rejected-language")
                doc.reject("language", f"main language und not in {self.allowed}")
            return
        group = self._group(primary_script, counts)
        main_langs = self._main_languages(text, runs, primary_script, main_scripts, group)
        lang = main_langs[0]
        doc.meta["language"] = lang
        if len(main_langs) > 1:
            doc.meta["main_languages"] = main_langs
        self.stat_update(f"main-language-{lang}")
        self.stat_update(f"main-script-{primary_script.lower()}")
        if self.allowed and not any(x in self.allowed for x in main_langs):
            self.stat_update("doc-rejected-language")
            doc.reject("language", f"main language {lang} not in {self.allowed}")
            return

        fragments: list[_Fragment] = []
        for s, e, script in self._script_fragments(text, runs, _host_scripts(main_scripts)):
            if script in _SCRIPT_LANGUAGE:
                flang = _SCRIPT_LANGUAGE[script]
            else:
                probs = self._detect(text[s:e])
                flang = probs[0][0] if probs else "und"
            fragments.append(_Fragment(s, e, "script", script.lower(), flang))
        if not (main_scripts & _CJK):
            taken = [(f.start, f.end) for f in fragments]
            for s, e in self._stray_punct(text, runs, taken):
                fragments.append(_Fragment(s, e, "script", "stray-punct", "und"))
        if self.options.same_script and lang != "und":
            taken = [(f.start, f.end) for f in fragments]
            for s, e, flang in self._same_script_fragments(text, runs, main_langs, main_scripts, taken):
                fragments.append(_Fragment(s, e, "langdetect", flang, flang))
        if not fragments:
            return
        fragments.sort(key=lambda f: f.start)
        for f in fragments:
            self.stat_update(f"fragment-{f.kind}-{f.label}")
            self.stat_update("fragment-chars", f.end - f.start)

        if self.options.action == "tag":
            listed = []
            for f in fragments:
                entry = {"start": f.start, "end": f.end, "text": text[f.start : f.end], "language": f.language}
                if f.kind == "script":
                    entry["script"] = f.label
                else:
                    entry["detector"] = "langdetect"
                listed.append(entry)
            doc.meta["language_fragments"] = listed
        elif self.options.action == "remove":
            doc.text = self._remove(doc, text, fragments)

    def _remove(self, doc: Document, text: str, fragments: list[_Fragment]) -> str:
        pieces: list[str] = []
        pos = 0
        n = len(text)
        for f in fragments:
            s, e = f.start, f.end
            if s < pos:
                continue
            fragment = text[s:e]
            line_start = text.rfind("\n", 0, s) + 1
            line_end = text.find("\n", e)
            line_end = n if line_end == -1 else line_end
            replacement = ""
            lines = 0
            if (
                line_start >= pos
                and not _LETTER_OR_DIGIT_RE.search(text, line_start, s)
                and not _LETTER_OR_DIGIT_RE.search(text, e, line_end)
            ):
                # the fragment is the whole line: drop the line and its newline
                s = line_start
                if line_end < n:
                    e = line_end + 1
                elif s > pos and s > 0:
                    s, e = s - 1, n
                else:
                    e = n
                lines = fragment.count("\n") + 1
            else:
                before = text[s - 1] if s > 0 else "\n"
                after = text[e] if e < n else "\n"
                if before in " \t" and after in " \t":
                    e += 1
                elif before in " \t" and after == "\n" and s - 1 >= pos:
                    s -= 1
                elif before == "\n" and after in " \t":
                    e += 1
                elif after in " \t" and _is_cjk(before):
                    e += 1  # "。 许多" -> "。许多": CJK text has no spaces between sentences
                elif before in " \t" and _is_cjk(after) and s - 1 >= pos:
                    s -= 1
                elif _joins_words(before, after):
                    replacement = " "
            pieces.append(text[pos:s])
            pieces.append(replacement)
            pos = e
            rule = f"fragment-{f.label}"
            doc.remove("language", rule, fragment, lines=lines, language=f.language)
        pieces.append(text[pos:])
        return "".join(pieces)


def _host_scripts(main_scripts: frozenset[str]) -> frozenset[str]:
    """Scripts the script check leaves alone: a Chinese text's kana go to the same-script check
    (a Japanese sentence mixes kana with Han, so it is judged as a whole sentence)."""
    if main_scripts == frozenset({"Han"}):
        return main_scripts | {"Kana"}
    return main_scripts


def _is_cjk(c: str) -> bool:
    """A Han/Kana/Hangul letter or CJK punctuation."""
    if c in _CJK_PUNCT or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uff65":
        return True
    m = _RUN_RE.match(c)
    return bool(m and m.lastgroup in _CJK)


def _joins_words(before: str, after: str) -> bool:
    """Would gluing these two characters make one word out of two (alphabetic scripts only)?"""

    def alnum(c: str) -> bool:
        if not _LETTER_OR_DIGIT_RE.match(c):
            return False
        m = _RUN_RE.match(c)
        return not (m and m.lastgroup in _CJK)

    return alnum(before) and alnum(after)
