"""Boilerplate stage: drop web leftovers (comment forms, widgets, share/cookie/login lines, breadcrumbs,
navigation lists, ...) from text that was already extracted from HTML.

Works line by line with rules loaded from pattern packs, YAML data files in
``pipeline/data/boilerplate/<lang>.yaml`` (format documented in ``common.yaml``), plus a few structural
rules that look at the shape of the text:

* ``breadcrumb`` / ``breadcrumb-prefix``: "Home » World » Asia" lines, a trail glued to the first
  sentence ("Home » China and Russia ..." keeps the sentence), "HomeWorldSome Title" glued trails;
* ``widget-list``: after a strong end-of-article marker (comment form, widget heading) the short
  lines that follow (post titles, "Recent Comments" entries) until a line that looks like prose;
* ``navigation``: runs of many consecutive very short lines (menus).

Every removed line is recorded with ``doc.remove("boilerplate", rule, line, lines=1)`` and counted as
``line-filter-<rule>``. Blank lines are left alone (a later stage collapses them).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections import Counter
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import regex
import yaml
from pydantic import Field

from pipeline.document import Document
from pipeline.stages.base import Stage, StageOptions

PACK_PACKAGE = "pipeline"
PACK_DIR = ("data", "boilerplate")
COMMON_PACK = "common"

# Rules produced by the stage's own logic rather than by pattern packs.
STRUCTURAL_RULES = ("breadcrumb", "breadcrumb-prefix", "widget-list", "navigation")
RECURRING_RULE = "recurring"
CONTENT_RULE = "outside-content"
# Lines longer than this are not counted for recurrence (they are article text, or dedup's job).
RECURRING_MAX_CHARS = 2000
# Rules whose match starts a trailing widget block unless a pack says otherwise (`ends_article`).
DEFAULT_END_MARKERS = frozenset({"comment-form", "widget-heading"})
PACK_KEYS = frozenset({"lines", "patterns", "phrases", "ends_article"})

# Whole-line regexes are tried only on lines up to this many characters (patterns are bounded).
MAX_WHOLE_LINE_CHARS = 600
# A line with more words than this is prose whatever its punctuation.
PROSE_MIN_WORDS = 16
# A line of at least this many words that looks like prose means the article has started.
SEEN_PROSE_MIN_WORDS = 8
# Longest crumb (in words) inside a breadcrumb trail.
CRUMB_MAX_WORDS = 12
# Words allowed before the root of a trail ("Sie sind hier: Startseite", "date 2023-11-10 Home").
CRUMB_LEAD_MAX_WORDS = 4

# Surrounding characters removed when building a line's lookup key: spaces, punctuation (brackets
# excepted, so "(3)" and "(c)" survive), math symbols (| > → ...), format characters.
_EDGE = r"[\s\p{Po}\p{Pd}\p{Pi}\p{Pf}\p{Pc}\p{Sm}\p{Cf}\p{Sk}]+"
_EDGE_RE = regex.compile(rf"^{_EDGE}|{_EDGE}$")
_CJK_RE = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]")
# Sentence end: ., !, ? after two letters, maybe closed by a bracket or quote ("word)." but not
# "23. Juni" or "U.S"), or CJK full stops.
_SENTENCE_END_RE = regex.compile(r"(?:(?<=\p{L}\p{L}[)\]\"'”’»]*)[.!?…]|[?!])[\"'”’»)\]]*(?=\s|$)|[。！？]")
# A body line ends like a sentence (or a quote, or a colon introducing a list).
_BODY_END_RE = regex.compile(r"[.!?…:;\"'”“»)\]。！？]\s*$")
_LIST_ITEM_RE = regex.compile(r"[•·▪◦‣∙*-]\s|\d{1,2}[.)]\s")
_DIGIT_RE = regex.compile(r"\d")
# Breadcrumb separators: arrows and guillemets may be glued to words, ">" needs spaces (and no "<" in
# the line: code, markup), "/", "|" and "::" need spaces and only count after a root word ("Home / News").
_SEP_STRONG_RE = regex.compile(r"[»›→]|\s>\s")
_SEP_RE = regex.compile(r"\s*[»›→]\s*|\s+(?:>|/|\||::)\s+")
# In a line quoting with guillemets (« ... »), » closes a quote and is no separator.
_SEP_QUOTED_RE = regex.compile(r"\s*[›→]\s*|\s+(?:>|/|\||::)\s+")
_SEP_NO_GT_RE = regex.compile(r"\s*[»›→]\s*|\s+(?:/|\||::)\s+")


def normalise(line: str) -> str:
    """Lookup key of a line: lower-cased, inner whitespace folded, surrounding punctuation stripped."""
    return _EDGE_RE.sub("", " ".join(line.split()).lower())


def word_count(key: str) -> int:
    """Words in a normalised line; CJK characters count as half a word each."""
    words = len(key.split())
    if not key.isascii():
        cjk = len(_CJK_RE.findall(key))
        if cjk:
            words += cjk // 2
    return words


def looks_like_prose(text: str, words: int) -> bool:
    return words >= PROSE_MIN_WORDS or _SENTENCE_END_RE.search(text) is not None


def available_languages() -> list[str]:
    """Language packs shipped with the package (without ``common``)."""
    root = resources.files(PACK_PACKAGE).joinpath(*PACK_DIR)
    names = sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))
    return [n for n in names if n != COMMON_PACK]


@functools.cache
def _read_shipped_pack(name: str) -> dict[str, Any]:
    """A shipped pack, parsed once per process (callers must not modify it)."""
    text = resources.files(PACK_PACKAGE).joinpath(*PACK_DIR, f"{name}.yaml").read_text(encoding="utf-8")
    return _check_pack(yaml.safe_load(text) or {}, f"{name}.yaml")


def _check_pack(pack: Any, where: str) -> dict[str, Any]:
    if not isinstance(pack, dict):
        raise ValueError(f"boilerplate pack {where}: expected a mapping at the top level")
    rules = pack.get("rules") or {}
    if not isinstance(rules, dict):
        raise ValueError(f"boilerplate pack {where}: 'rules' must map rule names to entries")
    for rule, entry in rules.items():
        if not isinstance(entry, dict):
            raise ValueError(f"boilerplate pack {where}: rule {rule!r} must be a mapping")
        unknown = set(entry) - PACK_KEYS
        if unknown:
            raise ValueError(
                f"boilerplate pack {where}: rule {rule!r} has unknown keys {sorted(unknown)} "
                f"(allowed: {sorted(PACK_KEYS)})"
            )
    roots = pack.get("breadcrumb_roots") or []
    if not isinstance(roots, list):
        raise ValueError(f"boilerplate pack {where}: 'breadcrumb_roots' must be a list")
    return pack


def _compile(pattern: str, where: str) -> regex.Pattern:
    try:
        return regex.compile(pattern, regex.IGNORECASE)
    except regex.error as err:
        raise ValueError(f"boilerplate: bad regex {pattern!r} in {where}: {err}") from err


def _bounded(phrase: str) -> tuple[bool, bool]:
    """Whether a contains-phrase needs a word boundary before / after it (not for CJK edges)."""
    head, tail = phrase[0], phrase[-1]
    return (head.isalnum() and not _CJK_RE.match(head), tail.isalnum() and not _CJK_RE.match(tail))


def _find_phrase(key: str, phrase: str, head: bool, tail: bool) -> bool:
    start = key.find(phrase)
    while start >= 0:
        end = start + len(phrase)
        if (not head or start == 0 or not key[start - 1].isalnum()) and (
            not tail or end == len(key) or not key[end].isalnum()
        ):
            return True
        start = key.find(phrase, start + 1)
    return False


class BoilerplateStage(Stage):
    """Remove boilerplate lines (comment forms, widgets, share/cookie/login lines, breadcrumbs, menus)."""

    name: ClassVar[str] = "boilerplate"

    class Options(StageOptions):
        languages: list[str] | None = Field(
            None,
            description="Pattern packs to load (e.g. [en, de]); null loads every shipped pack. "
            "Language-neutral rules (common.yaml) are always loaded.",
        )
        patterns: dict[str, list[str]] = Field(
            default_factory=dict,
            description="Extra whole-line regexes per rule name (new names allowed), matched "
            "case-insensitively against the trimmed line with surrounding punctuation removed.",
        )
        disable_rules: list[str] = Field(
            default_factory=list,
            description="Rule names to switch off, e.g. [date-line, navigation].",
        )
        pattern_files: list[str] = Field(
            default_factory=list,
            description="Extra YAML pattern packs in the shipped format (rules: {name: {lines, patterns, phrases}}).",
        )
        max_phrase_line_words: int = Field(
            12,
            ge=1,
            description="A 'contains' phrase (e.g. 'uses cookies') only removes lines of at most this "
            "many words, so a real sentence mentioning it is kept.",
        )
        nav_min_run: int = Field(
            5,
            ge=2,
            description="Remove a run of at least this many consecutive navigation-like lines "
            "(very short, no digits, no sentence punctuation) as 'navigation'.",
        )
        nav_max_words: int = Field(
            3,
            ge=1,
            description="Most words a line may have to count as a navigation item.",
        )
        remove_trailing_blocks: bool = Field(
            True,
            description="After a comment form or widget heading, also remove the short non-prose lines "
            "that follow (lists of post titles, recent comments) as 'widget-list'.",
        )
        trailing_max_words: int = Field(
            15,
            ge=1,
            description="Most words a line may have to be removed as part of a trailing widget block.",
        )
        recurring_min_documents: int = Field(
            5,
            ge=2,
            description="A line found in at least this many documents of the whole input (counted in a first "
            "pass) is template boilerplate ('recurring'): cookie banners of CMP plugins, comment forms.",
        )
        recurring_min_words: int = Field(
            2,
            ge=1,
            description="Corpus-wide recurrence only counts lines of at least this many words: single words "
            "recur across sites as real headings ('Fazit', 'Mission'); per-site counting has no such floor.",
        )
        recurring_site_min_documents: int = Field(
            3,
            ge=2,
            description="Per site (host of the record's `url`, else the input file): a line in at least this "
            "many of the site's documents, and in at least recurring_site_min_share of them, is 'recurring'.",
        )
        recurring_site_min_share: float = Field(
            0.5,
            gt=0,
            le=1,
            description="Share of a site's documents a line must appear in to be 'recurring' for that site.",
        )
        content_min_words: int = Field(
            8,
            ge=1,
            description="Main-content localisation: a line ending like a sentence with at least this many words "
            "(or any line of 16+ words) is body text; the densest stretch of body text is the article.",
        )
        content_line_penalty: int = Field(
            8,
            ge=0,
            description="Characters of body text a short non-body line costs when finding the article stretch "
            "(higher: a tighter article, more chrome removed around it).",
        )
        content_margin: int = Field(
            2,
            ge=0,
            description="Non-blank lines kept right before and after the article stretch (title, byline, "
            "last list item); short lines further away are removed as 'outside-content'.",
        )
        content_keep_words: int = Field(
            8,
            ge=1,
            description="Body-like lines outside the article stretch are kept when they have at least this "
            "many words (a second text block is more likely content than chrome).",
        )

    needs_prepare: ClassVar[bool] = True

    def __init__(self, options: StageOptions | None = None) -> None:
        super().__init__(options)
        # Learnt by prepare(): keys of lines recurring corpus-wide, and per site.
        self.recurring: frozenset[str] = frozenset()
        self.recurring_by_site: dict[str, frozenset[str]] = {}
        self._build()

    # -- set-up -------------------------------------------------------------------------------

    def _load_packs(self) -> list[tuple[str, dict[str, Any]]]:
        opts = self.options
        shipped = available_languages()
        languages = shipped if opts.languages is None else list(opts.languages)
        for lang in languages:
            if lang not in shipped:
                close = difflib.get_close_matches(lang, shipped, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"boilerplate: no pattern pack for language {lang!r}{hint}; have {shipped}")
        packs = [(f"{COMMON_PACK}.yaml", _read_shipped_pack(COMMON_PACK))]
        packs += [(f"{lang}.yaml", _read_shipped_pack(lang)) for lang in languages]
        for path in opts.pattern_files:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as err:
                raise ValueError(f"boilerplate: cannot read pattern file {path}: {err}") from err
            packs.append((path, _check_pack(yaml.safe_load(text) or {}, path)))
        return packs

    def _known_rules(self, packs: list[tuple[str, dict[str, Any]]]) -> set[str]:
        known = set(STRUCTURAL_RULES) | {RECURRING_RULE, CONTENT_RULE} | set(self.options.patterns)
        for name in [COMMON_PACK, *available_languages()]:
            known |= set(_read_shipped_pack(name).get("rules") or {})
        for _, pack in packs:
            known |= set(pack.get("rules") or {})
        return known

    def _build(self) -> None:
        opts = self.options
        packs = self._load_packs()
        known = self._known_rules(packs)
        for rule in opts.disable_rules:
            if rule not in known:
                close = difflib.get_close_matches(rule, sorted(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"boilerplate: unknown rule {rule!r} in disable_rules{hint}")
        disabled = set(opts.disable_rules)
        self._disabled = frozenset(disabled)

        exact: dict[str, str] = {}
        # User patterns come first so that they win over pack patterns matching the same line.
        whole: dict[str, list[str]] = {}
        for rule, user_patterns in opts.patterns.items():
            if rule in disabled:
                continue
            for pattern in user_patterns:
                _compile(pattern, f"patterns.{rule}")
                whole.setdefault(rule, []).append(pattern)
        phrases: list[tuple[str, str, bool, bool]] = []
        end_markers = set(DEFAULT_END_MARKERS)
        roots: set[str] = set()
        for where, pack in packs:
            roots |= {normalise(str(r)) for r in pack.get("breadcrumb_roots") or []}
            for rule, entry in (pack.get("rules") or {}).items():
                if entry.get("ends_article") is True:
                    end_markers.add(rule)
                elif entry.get("ends_article") is False:
                    end_markers.discard(rule)
                if rule in disabled:
                    continue
                for line in entry.get("lines") or []:
                    key = normalise(str(line))
                    if key:
                        exact.setdefault(key, rule)
                for pattern in entry.get("patterns") or []:
                    _compile(str(pattern), f"{where} rule {rule}")
                    whole.setdefault(rule, []).append(str(pattern))
                for phrase in entry.get("phrases") or []:
                    key = normalise(str(phrase))
                    if key:
                        phrases.append((key, rule, *_bounded(key)))

        self._exact = exact
        self._end_markers = frozenset(end_markers)
        self._group_rule: dict[str, str] = {}
        self._whole_re = self._combine(whole, "w")
        # Plain substring search (C speed) beats a regex alternation for a list of literal phrases.
        self._phrases = tuple(phrases)

        root_alt = "|".join(regex.escape(r) for r in sorted(roots, key=len, reverse=True) if r)
        self._roots = frozenset(roots)
        # "home", "1. startseite": a line that is only the root of a trail.
        self._root_line_re = regex.compile(rf"(?:\d+\.\s*)?(?:{root_alt})", regex.IGNORECASE)
        # First crumb: up to a few lead words ("you are here:", "date 2023-11-10") then a root word.
        self._crumb_root_re = regex.compile(
            rf"(?:[^\s]+\s+){{0,{CRUMB_LEAD_MAX_WORDS}}}?(?<![\w])(?:{root_alt})", regex.IGNORECASE
        )
        # Trail glued by HTML extraction: "HomeWorldPutin in Beijing ..." (root + uppercase letter).
        glued = "|".join(regex.escape(r[:1].upper() + r[1:]) for r in sorted(roots, key=len, reverse=True))
        self._glued_re = regex.compile(rf"(?:{glued})(?=\p{{Lu}}\p{{Ll}})")

    def _combine(self, rules: dict[str, list[str]], prefix: str) -> re.Pattern | regex.Pattern | None:
        """One alternation with a named group per rule (matched with fullmatch, so anchored)."""
        parts = []
        for i, (rule, patterns) in enumerate(rules.items()):
            group = f"{prefix}{i}"
            self._group_rule[group] = rule
            # Keys are lower-cased, so only a pattern with capitals needs case-insensitive matching; a
            # global IGNORECASE makes the whole alternation about 3x slower.
            alts = "|".join(f"(?i:{p})" if p != p.lower() else f"(?:{p})" for p in patterns)
            parts.append(f"(?P<{group}>{alts})")
        if not parts:
            return None
        combined = "|".join(parts)
        try:
            # The stdlib engine runs this alternation faster; `regex` is kept for \p{...} and friends.
            return re.compile(combined)  # type: ignore[return-value]
        except re.error:
            return regex.compile(combined, regex.IGNORECASE)

    # Compiled `regex` patterns are rebuilt in the worker rather than pickled; what prepare() learnt
    # travels with the options.
    def __getstate__(self) -> dict[str, Any]:
        return {
            "options": self.options,
            "stats": self.stats,
            "recurring": self.recurring,
            "recurring_by_site": self.recurring_by_site,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.options = state["options"]
        self.stats = state["stats"]
        self.recurring = state.get("recurring", frozenset())
        self.recurring_by_site = state.get("recurring_by_site", {})
        self._build()

    def rule_groups(self) -> dict[str, list[str]]:
        """Rule names by part of the stage (for ablations: pass a group to ``disable_rules``)."""
        packs = sorted(self._known_rules(self._load_packs()) - set(STRUCTURAL_RULES) - {RECURRING_RULE, CONTENT_RULE})
        return {
            "packs": packs,
            "structure": list(STRUCTURAL_RULES),
            "recurring": [RECURRING_RULE],
            "content": [CONTENT_RULE],
        }

    # -- first pass -----------------------------------------------------------------------------

    @staticmethod
    def site_of(doc: Document) -> str:
        """Host of the record's ``url`` (without "www."), else the input file."""
        url = (doc.record or {}).get("url")
        if isinstance(url, str) and url:
            host = urlsplit(url).hostname
            if host:
                return host.removeprefix("www.")
        return doc.source

    def prepare(self, docs: Iterable[Document]) -> None:
        """Count each distinct line once per document, per site and corpus-wide.

        Counting uses the in-process string hash (cheap, small); a key string is kept only once its
        count reaches a threshold, so memory holds counters plus the recurring lines themselves.
        """
        opts = self.options
        if RECURRING_RULE in self._disabled:
            return
        corpus: Counter[int] = Counter()
        site_docs: Counter[str] = Counter()
        site_lines: dict[str, Counter[int]] = {}
        site_keys: dict[str, dict[int, str]] = {}
        recurring: set[str] = set()
        corpus_min = opts.recurring_min_documents
        min_words = opts.recurring_min_words
        for doc in docs:
            keys = {normalise(line) for line in doc.text.split("\n") if 0 < len(line) <= RECURRING_MAX_CHARS}
            keys.discard("")
            site = self.site_of(doc)
            site_docs[site] += 1
            counts = site_lines.setdefault(site, Counter())
            first = site_keys.setdefault(site, {})
            for key in keys:
                h = hash(key)
                corpus[h] += 1
                if corpus[h] == corpus_min and word_count(key) >= min_words:
                    recurring.add(key)
                counts[h] += 1
                if counts[h] == 2:
                    first[h] = key
        by_site: dict[str, frozenset[str]] = {}
        for site, n in site_docs.items():
            if n < opts.recurring_site_min_documents:
                continue
            need = max(opts.recurring_site_min_documents, opts.recurring_site_min_share * n)
            keys = {site_keys[site][h] for h, c in site_lines[site].items() if c >= need}
            if keys:
                by_site[site] = frozenset(keys)
        self.recurring = frozenset(recurring)
        self.recurring_by_site = by_site

    # -- per line -------------------------------------------------------------------------------

    def classify(self, line: str) -> str | None:
        """Rule name of a pattern-pack rule matching this (single) line, or None."""
        key = normalise(line)
        if not key:
            return None
        return self._classify_key(key, word_count(key))

    def _classify_key(self, key: str, words: int) -> str | None:
        rule = self._exact.get(key)
        if rule is not None:
            return rule
        if self._whole_re is not None and len(key) <= MAX_WHOLE_LINE_CHARS:
            m = self._whole_re.fullmatch(key)
            if m is not None:
                return self._group_rule[m.lastgroup]
        if words <= self.options.max_phrase_line_words:
            for phrase, rule, head, tail in self._phrases:
                if phrase in key and _find_phrase(key, phrase, head, tail):
                    return rule
        return None

    def _breadcrumb(self, stripped: str, key: str, words: int) -> tuple[str, int] | None:
        """('breadcrumb', 0) for a whole-line trail, ('breadcrumb-prefix', n) to cut n leading chars."""
        if key in self._roots or self._root_line_re.fullmatch(key):
            return "breadcrumb", 0
        if self._glued_re.match(stripped) and not _SENTENCE_END_RE.search(stripped):
            return "breadcrumb", 0
        if "<" in stripped:
            sep_re = _SEP_NO_GT_RE
        elif "«" in stripped:
            sep_re = _SEP_QUOTED_RE
        else:
            sep_re = _SEP_RE
        seps = list(sep_re.finditer(stripped))
        if not seps:
            return None
        first = normalise(stripped[: seps[0].start()])
        rooted = bool(first) and self._crumb_root_re.fullmatch(first) is not None
        if not rooted and len([s for s in seps if _SEP_STRONG_RE.search(s.group())]) < 2:
            return None
        if not rooted and _SENTENCE_END_RE.search(stripped):
            return None
        # Walk the crumbs; the first prose-like segment is content glued to the trail.
        bounds = [0, *(s.end() for s in seps)]
        ends = [*(s.start() for s in seps), len(stripped)]
        for i in range(1, len(bounds)):
            segment = stripped[bounds[i] : ends[i]]
            seg_key = normalise(segment)
            seg_words = word_count(seg_key)
            if i == len(bounds) - 1 and rooted and looks_like_prose(stripped[bounds[i] :], seg_words):
                return "breadcrumb-prefix", bounds[i]
            if seg_words > CRUMB_MAX_WORDS or (seg_key and looks_like_prose(segment, seg_words)):
                if rooted and i >= 1 and looks_like_prose(stripped[bounds[i] :], words):
                    return "breadcrumb-prefix", bounds[i]
                return None
        return "breadcrumb", 0

    def _nav_item(self, stripped: str, key: str, words: int) -> bool:
        return (
            0 < words <= self.options.nav_max_words
            and _DIGIT_RE.search(key) is None
            and _SENTENCE_END_RE.search(stripped) is None
            and ":" not in stripped
            and not stripped.endswith((",", ";"))
        )

    # -- per document ---------------------------------------------------------------------------

    def process(self, doc: Document) -> None:
        text = doc.text
        if not text:
            return
        opts = self.options
        disabled = self._disabled
        lines = text.split("\n")
        n = len(lines)
        # None: keep; str: rule that removed the line.
        verdict: list[str | None] = [None] * n
        new_text: dict[int, str] = {}
        prefixes: dict[int, str] = {}
        nav: list[bool] = [False] * n
        trailing = seen_prose = False
        trailing_on = opts.remove_trailing_blocks and "widget-list" not in disabled
        crumbs_on = "breadcrumb" not in disabled
        prefix_on = "breadcrumb-prefix" not in disabled

        recurring_on = RECURRING_RULE not in disabled
        recurring = self.recurring
        site_recurring = self.recurring_by_site.get(self.site_of(doc), frozenset()) if recurring_on else frozenset()
        content_on = CONTENT_RULE not in disabled
        # Per line: characters of body text (> 0), or a non-body line (-1); 0 for blank lines.
        body: list[int] = [0] * n
        body_words = opts.content_min_words
        keep_words = opts.content_keep_words
        outside_keep: list[bool] = [False] * n

        for i, line in enumerate(lines):
            stripped = line.strip()
            if not stripped:
                continue
            key = normalise(stripped)
            if not key:
                continue
            words = word_count(key)
            rule = self._classify_key(key, words)
            if rule is None and recurring_on and (key in recurring or key in site_recurring):
                verdict[i] = RECURRING_RULE
                continue
            if rule is not None:
                verdict[i] = rule
                # A marker ends an article only once some prose was seen, and a list item is a link
                # in a menu rather than a heading.
                if rule in self._end_markers and seen_prose and not _LIST_ITEM_RE.match(stripped):
                    trailing = trailing_on
                continue
            crumb = self._breadcrumb(stripped, key, words) if crumbs_on or prefix_on else None
            if crumb is not None:
                kind, cut = crumb
                if kind == "breadcrumb" and crumbs_on:
                    verdict[i] = kind
                    continue
                if kind == "breadcrumb-prefix" and prefix_on:
                    start = len(line) - len(line.lstrip())
                    prefixes[i] = line[: start + cut]
                    new_text[i] = line[start + cut :]
                    trailing = False
                    continue
            prose = looks_like_prose(stripped, words)
            if trailing:
                if words <= opts.trailing_max_words and not prose:
                    verdict[i] = "widget-list"
                    continue
                trailing = False
            if prose and words >= SEEN_PROSE_MIN_WORDS:
                seen_prose = True
            nav[i] = self._nav_item(stripped, key, words)
            if content_on:
                is_body = words >= PROSE_MIN_WORDS or (words >= body_words and _BODY_END_RE.search(stripped))
                body[i] = len(stripped) if is_body else -1
                outside_keep[i] = bool(is_body) and words >= keep_words
            if i in new_text:
                body[i] = max(body[i], len(new_text[i].strip()))

        if "navigation" not in disabled:
            self._mark_navigation(lines, verdict, nav)
        if content_on:
            self._mark_outside_content(verdict, body, outside_keep)

        if not new_text and not any(verdict):
            return
        out: list[str] = []
        for i, line in enumerate(lines):
            rule = verdict[i]
            if rule is not None:
                doc.remove(self.name, rule, line.rstrip("\r"), lines=1)
                self.stat_update(f"line-filter-{rule}")
                continue
            if i in prefixes:
                doc.remove(self.name, "breadcrumb-prefix", prefixes[i], lines=0)
                self.stat_update("line-filter-breadcrumb-prefix")
                line = new_text[i]
            out.append(line)
            if i < n - 1:
                out.append("\n")
        doc.text = "".join(out)

    def _mark_outside_content(self, verdict: list[str | None], body: list[int], keep: list[bool]) -> None:
        """Find the article as the stretch of lines with the most body text (maximum-sum segment: body
        lines add their length, other kept lines cost ``content_line_penalty``) and mark the short lines
        beyond a margin around it as 'outside-content' (menus, teasers, sidebars, footers).

        Nothing happens in a document without a stretch of at least two body lines: a list, a product
        page or a very short text has no article to measure against.
        """
        penalty = self.options.content_line_penalty
        best = cur = 0
        best_start = best_end = cur_start = 0
        cur_body = best_body = 0
        for i, value in enumerate(body):
            if value == 0 or verdict[i] is not None:
                continue
            if cur <= 0:
                cur, cur_start, cur_body = 0, i, 0
            if value > 0:
                cur += value
                cur_body += 1
            else:
                cur -= penalty
            if cur > best:
                best, best_start, best_end, best_body = cur, cur_start, i + 1, cur_body
        if best_body < 2:
            return
        margin = self.options.content_margin
        # Walk outwards from the stretch, counting kept non-blank lines.
        for rng in (range(best_start - 1, -1, -1), range(best_end, len(body))):
            seen = 0
            for i in rng:
                if body[i] == 0 or verdict[i] is not None:
                    continue
                seen += 1
                if seen > margin and not keep[i]:
                    verdict[i] = CONTENT_RULE

    def _mark_navigation(self, lines: list[str], verdict: list[str | None], nav: list[bool]) -> None:
        """Mark runs of navigation items as 'navigation'.

        A run is a stretch of consecutive navigation items; lines already removed by a pack rule
        ("Home", "Impressum", "Login") neither count nor break it, but they show the run is a menu. A
        run needs ``nav_min_run`` items and such a menu line inside or right next to it; without one it
        needs twice as many items (a bullet list inside an article is rarely that long).
        """
        min_run = self.options.nav_min_run
        n = len(lines)
        i = 0
        while i < n:
            if not nav[i]:
                i += 1
                continue
            start = i
            items: list[int] = []
            anchored = start > 0 and verdict[start - 1] is not None
            while i < n and (nav[i] or verdict[i] is not None):
                if nav[i]:
                    items.append(i)
                else:
                    anchored = True
                i += 1
            if len(items) >= min_run and (anchored or len(items) >= 2 * min_run):
                for j in items:
                    verdict[j] = "navigation"
