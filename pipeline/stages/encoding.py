"""encoding: repair mojibake, HTML entities and bad Unicode exactly as ftfy does, many times faster.

Input bytes are decoded by the readers (UTF-8 first, then charset-normalizer); the encoding they
detected is in ``doc.meta["encoding"]`` and counted here, as are the escaped lone surrogates a JSONL
reader replaced by U+FFFD (``doc.meta["lone_surrogates"]``).

Why it is exact. ``ftfy.fix_text`` cuts the text into segments (lines) and runs
``fix_and_explain`` on each: a loop of steps (unescape HTML, fix encoding, C1 controls, ligatures,
width, quotes, line breaks, surrogates, terminal escapes, control characters, normalization),
repeated until a round changes nothing. Each step can only act when the segment contains
something specific, derived below from ftfy's own tables and regexes:

* ``unescape_html`` needs a match of ftfy's ``HTML_ENTITY_RE`` (``&name;``);
* ``fix_encoding`` returns the text unchanged unless ``ftfy.badness.is_bad`` (``BADNESS_RE``)
  matches. ``badness_anchored()`` matches wherever ``BADNESS_RE`` could: each of its branches is
  rewritten, from ftfy's parse tree, around one rare character with the rest as lookarounds, so
  the regex engine skips ordinary text at C speed (``BADNESS_RE`` itself has no such prefilter and
  costs a third of ftfy's time on clean text);
* every other fixer is a character mapping or a character regex (``_simple_chars``);
* normalization changes only text that ``unicodedata.is_normalized`` rejects.

Segments with an entity or possible mojibake ("heavy") go through ``ftfy.fix_and_explain``. The
rest skip the two steps that cannot act and get ftfy's remaining fixers (the same functions, in
ftfy's order); the result is kept only if it has no trigger left, i.e. ftfy's next round would be
a no-op, otherwise those segments go through ftfy too. Every fixer is local to a line and '\\n'
never composes under normalization, so clean runs of lines are handled in one piece.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any, Literal

from pipeline import lean_imports

lean_imports.import_ftfy()  # (without wcwidth)

import ftfy  # noqa: E402
import numpy as np  # noqa: E402
from ftfy import TextFixerConfig, chardata, fixes  # noqa: E402
from ftfy.badness import BADNESS_RE  # noqa: E402
from pydantic import Field, model_validator  # noqa: E402

from pipeline.document import Document  # noqa: E402
from pipeline.stages.base import Stage, StageOptions  # noqa: E402
from pipeline.stages.text_kernels import NOT_NFC_SAFE, code_points, lead_scan, nfc_by_line, not_nfc_safe  # noqa: E402

# ftfy's own defaults, and ours: the same repairs, but the writer's typography is kept.
FTFY_DEFAULTS: dict[str, Any] = {
    k: v for k, v in TextFixerConfig._field_defaults.items() if k not in ("explain", "max_decode_length")
}
PRESETS: dict[str, dict[str, Any]] = {
    "ftfy-default": FTFY_DEFAULTS,
    "preserve": {
        **FTFY_DEFAULTS,
        "fix_latin_ligatures": False,
        "fix_character_width": False,
        "uncurl_quotes": False,
        "normalization": "NFC",
    },
}

# ---------------------------------------------------------------- triggers derived from ftfy


def _esc(code: int) -> str:
    return f"\\U{code:08x}"


def _class_items(items: list[tuple[Any, Any]]) -> str | None:
    """Regex source of an ``IN`` element's items (None if an item is not understood)."""
    categories = {
        sre_c.CATEGORY_SPACE: r"\s",
        sre_c.CATEGORY_NOT_SPACE: r"\S",
        sre_c.CATEGORY_WORD: r"\w",
        sre_c.CATEGORY_NOT_WORD: r"\W",
        sre_c.CATEGORY_DIGIT: r"\d",
        sre_c.CATEGORY_NOT_DIGIT: r"\D",
    }
    out = []
    for op, av in items:
        if op is sre_c.NEGATE:
            out.append("^")
        elif op is sre_c.LITERAL:
            out.append(_esc(av))
        elif op is sre_c.RANGE:
            out.append(f"{_esc(av[0])}-{_esc(av[1])}")
        elif op is sre_c.CATEGORY and av in categories:
            out.append(categories[av])
        else:
            return None
    return "[" + "".join(out) + "]"


def _single_char(op: Any, av: Any) -> str | None:
    """Regex source of an element that matches exactly one character, else None."""
    if op is sre_c.LITERAL:
        return _esc(av)
    if op is sre_c.NOT_LITERAL:
        return f"[^{_esc(av)}]"
    if op is sre_c.ANY:
        return "."
    if op is sre_c.IN:
        return _class_items(av)
    return None


def _explicit_chars(op: Any, av: Any) -> set[int] | None:
    """The characters a LITERAL or a plain class (no negation, no \\s/\\w) matches, else None."""
    if op is sre_c.LITERAL:
        return {av}
    if op is sre_c.IN:
        chars: set[int] = set()
        for item, value in av:
            if item is sre_c.LITERAL:
                chars.add(value)
            elif item is sre_c.RANGE:
                chars.update(range(value[0], value[1] + 1))
            else:
                return None
        return chars
    return None


# Characters frequent in clean text make poor anchors (only speed depends on the choice).
_COMMON_PUNCTUATION = set(map(ord, "“”„‘’«»•–—…·©®€°§\xa0"))


def _anchor_cost(chars: set[int]) -> int:
    return sum(10 if chr(c).islower() or c in _COMMON_PUNCTUATION else 3 if chr(c).isalpha() else 1 for c in chars)


def _anchored_branches(pattern: re.Pattern[str]) -> dict[frozenset[int], list[str]]:
    return _anchored(pattern)[0]


def _anchored(
    pattern: re.Pattern[str],
) -> tuple[dict[frozenset[int], list[str]], dict[frozenset[int], list[frozenset[int] | None]]]:
    """Rewrite each top-level branch of ``pattern`` around one mandatory character class made only
    of non-ASCII characters (its anchor), as lookarounds to put after the consumed anchor:
    ``(?<=before anchor)(?=after)``. Returns anchor set -> rewritten branches, and anchor set -> for
    each of those branches the characters its lookbehind needs just before the anchor (None: any).

    Context is only ever dropped (at a variable-width element or '^'), never added, so wherever
    the branch matches, its rewrite matches at the anchor, inside the same span.
    """
    tree = sre_parse.parse(pattern.pattern, pattern.flags)
    is_branch = len(tree.data) == 1 and tree.data[0][0] is sre_c.BRANCH
    branches = tree.data[0][1][1] if is_branch else [tree]
    groups: dict[frozenset[int], list[str]] = {}
    previous: dict[frozenset[int], list[frozenset[int] | None]] = {}
    for branch in branches:
        elements = list(branch.data)
        candidates = []
        for i, (op, av) in enumerate(elements):
            chars = _explicit_chars(op, av)
            if chars and min(chars) >= 0x80:
                candidates.append((_anchor_cost(chars), i, chars))
        if not candidates:
            raise RuntimeError(f"ftfy badness branch without a non-ASCII anchor: {branch}")
        _, k, chars = min(candidates)
        before: list[str] = []
        for op, av in reversed(elements[:k]):
            src = _single_char(op, av)
            if src is None:
                break
            before.insert(0, src)
        after: list[str] = []
        for op, av in elements[k + 1 :]:
            src = _single_char(op, av)
            if src is None:
                break
            after.append(src)
        anchor_src = _single_char(*elements[k])
        assert anchor_src is not None
        rewritten = (f"(?<={''.join(before)}{anchor_src})" if before else "") + (
            f"(?={''.join(after)})" if after else ""
        )
        groups.setdefault(frozenset(chars), []).append(rewritten)
        just_before = _explicit_chars(*elements[k - 1]) if before else None
        previous.setdefault(frozenset(chars), []).append(frozenset(just_before) if just_before else None)
    return groups, previous


def _charclass(chars: Iterable[int]) -> str:
    """A character class of the code points, runs of three or more as ranges (the scan's pattern, listed
    one by one, was 68k characters and took ~30 ms to compile at every start)."""
    points = sorted(set(chars))
    parts: list[str] = []
    i = 0
    while i < len(points):
        j = i
        while j + 1 < len(points) and points[j + 1] == points[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{_esc(points[i])}-{_esc(points[j])}")
        else:
            parts.extend(_esc(c) for c in points[i : j + 1])
        i = j + 1
    return "[" + "".join(parts) + "]"


def _after_anchor(groups: dict[frozenset[int], list[str]]) -> str:
    """What follows the consumed anchor: one cheap check of the anchor set, then its branches."""
    parts = []
    for anchor, branches in groups.items():
        body = "" if "" in branches else "(?:" + "|".join(branches) + ")"
        parts.append(f"(?<={_charclass(anchor)}){body}")
    return "(?:" + "|".join(parts) + ")"


_BADNESS_GROUPS, _BADNESS_PREVIOUS = _anchored(BADNESS_RE)
_BADNESS_ANCHORS: set[int] = set().union(*_BADNESS_GROUPS)


@functools.cache
def badness_anchored() -> re.Pattern[str]:
    """Matches (at a rare character) wherever ftfy's BADNESS_RE could match in the same text: the
    fixer's scan without the other fixers' characters. Compiled on first use (~0.02 s), not at import."""
    return re.compile(_charclass(_BADNESS_ANCHORS) + _after_anchor(_BADNESS_GROUPS))


if not chardata.HTML_ENTITY_RE.pattern.startswith("&"):  # pragma: no cover - guards an ftfy upgrade
    raise RuntimeError("ftfy's HTML_ENTITY_RE no longer starts with '&'")
_ENTITY_BRANCH = f"(?<=&)(?={chardata.HTML_ENTITY_RE.pattern[1:]})"


def _regex_chars(pattern: re.Pattern[str]) -> set[int]:
    """Characters of a one-character-class regex such as ftfy's C1_CONTROL_RE."""
    ((op, av),) = sre_parse.parse(pattern.pattern, pattern.flags).data
    chars = _explicit_chars(op, av)
    if chars is None:  # pragma: no cover - guards an ftfy upgrade
        raise RuntimeError(f"not a plain character class: {pattern.pattern}")
    return chars


# What each character-level fixer needs in order to change anything.
_FIXER_CHARS: dict[str, set[int]] = {
    "fix_c1_controls": _regex_chars(chardata.C1_CONTROL_RE),
    "fix_latin_ligatures": set(chardata.LIGATURES),
    "fix_character_width": set(chardata.WIDTH_MAP),
    "uncurl_quotes": _regex_chars(chardata.SINGLE_QUOTE_RE) | _regex_chars(chardata.DOUBLE_QUOTE_RE),
    "fix_line_breaks": set(map(ord, "\r\u2028\u2029\x85")),
    "fix_surrogates": set(range(0xD800, 0xE000)),
    "remove_terminal_escapes": {0x1B},  # ANSI_RE starts with ESC
    "remove_control_chars": set(chardata.CONTROL_CHARS),
}


def _char_map(table: dict[int, str | None]) -> dict[str, str]:
    return {chr(k): v or "" for k, v in table.items()}


# Fixers that replace single characters by fixed strings, as maps. Replacing each character present
# with str.replace (C speed) gives what ftfy's translate/regex gives, because no replacement
# contains a character of the same map (checked below).
_CHAR_MAPS: dict[str, dict[str, str]] = {
    "fix_latin_ligatures": _char_map(chardata.LIGATURES),
    "fix_character_width": _char_map(chardata.WIDTH_MAP),
    "uncurl_quotes": {chr(c): "'" for c in _regex_chars(chardata.SINGLE_QUOTE_RE)}
    | {chr(c): '"' for c in _regex_chars(chardata.DOUBLE_QUOTE_RE)},
    "remove_control_chars": _char_map(chardata.CONTROL_CHARS),
}
for _name, _map in _CHAR_MAPS.items():
    if set("".join(_map.values())) & set(_map) or set(map(ord, _map)) != _FIXER_CHARS[_name]:
        raise RuntimeError(f"ftfy's {_name} is no longer a simple character map")  # pragma: no cover

# ftfy's fixers after fix_encoding, in the order fix_and_explain applies them.
_FIXER_ORDER = [
    "fix_c1_controls",
    "fix_latin_ligatures",
    "fix_character_width",
    "uncurl_quotes",
    "fix_line_breaks",
    "fix_surrogates",
    "remove_terminal_escapes",
    "remove_control_chars",
]

# Report names of what ftfy did, from the steps of its explanations.
FIX_KINDS: dict[str, str] = {
    "unescape_html": "html-entities",
    "restore_byte_a0": "mojibake",
    "replace_lossy_sequences": "mojibake",
    "decode_inconsistent_utf8": "mojibake",
    "utf-8": "mojibake",
    "utf-8-variants": "mojibake",
    "windows-1252": "c1-controls",  # latin-1 -> windows-1252: C1 controls meant as cp1252
    "fix_c1_controls": "c1-controls",
    "fix_latin_ligatures": "ligatures",
    "fix_character_width": "character-width",
    "uncurl_quotes": "curly-quotes",
    "fix_line_breaks": "line-breaks",
    "fix_surrogates": "surrogates",
    "remove_terminal_escapes": "terminal-escapes",
    "remove_control_chars": "control-chars",
}


def fix_kind(action: str, parameter: str) -> str | None:
    """Readable kind of one ftfy explanation step (None for the 'encode' half of a re-decoding)."""
    if action == "encode":
        return None
    if action == "normalize":
        return "normalization"
    return FIX_KINDS.get(parameter, "mojibake" if action in ("decode", "transcode") else parameter)


# ---------------------------------------------------------------- options


class EncodingOptions(StageOptions):
    preset: Literal["preserve", "ftfy-default"] = Field(
        "preserve",
        description="Starting values for the options below (any of them can still be set): 'preserve' "
        "repairs encoding, entities, control characters and line breaks but keeps curly quotes, "
        "full-width characters and ligatures (NFC); 'ftfy-default' gives exactly ftfy.fix_text's output.",
    )
    unescape_html: bool | Literal["auto"] = Field(
        "auto",
        description="Decode HTML entities (&amp; ...); 'auto' stops at the first line containing '<' "
        "(the rest of the document is taken to be HTML, as in ftfy).",
    )
    remove_terminal_escapes: bool = Field(True, description="Remove ANSI terminal escape sequences.")
    fix_encoding: bool = Field(True, description="Undo mojibake (UTF-8 decoded as cp1252/latin-1 ...).")
    restore_byte_a0: bool = Field(True, description="Allow repairs where a space stands for byte A0.")
    replace_lossy_sequences: bool = Field(True, description="Replace unrecoverable mojibake sequences with U+FFFD.")
    decode_inconsistent_utf8: bool = Field(True, description="Fix UTF-8 mojibake mixed into otherwise correct text.")
    fix_c1_controls: bool = Field(True, description="Replace C1 control characters with their cp1252 meaning.")
    fix_latin_ligatures: bool = Field(
        False, description="Split ligatures such as 'ﬁ' into letters (changes the writer's text; ftfy-default: true)."
    )
    fix_character_width: bool = Field(
        False,
        description="Fold full-width/half-width forms, e.g. '，' to ',' and U+3000 to a space (changes CJK "
        "punctuation; ftfy-default: true).",
    )
    uncurl_quotes: bool = Field(
        False, description="Turn curly quotes into straight ones (changes typography; ftfy-default: true)."
    )
    fix_line_breaks: bool = Field(True, description="Turn CRLF, CR and Unicode line separators into \\n.")
    fix_surrogates: bool = Field(True, description="Join UTF-16 surrogate pairs into real characters.")
    remove_control_chars: bool = Field(True, description="Remove control characters that have no meaning in text.")
    normalization: Literal["NFC", "NFKC", "NFD", "NFKD"] | None = Field(
        "NFC",
        description="Unicode normalization form (NFKC/NFKD change meaning: '²' becomes '2', 'ﬁ' 'fi'; null or "
        "'none': none).",
    )
    max_decode_length: int = Field(1_000_000, ge=1, description="Longest segment (line) ftfy repairs in one piece.")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        # Options the user did not set take the preset's value.
        if isinstance(data, dict):
            preset = PRESETS.get(data.get("preset", "preserve"), {})
            data = {**preset, **data}
            if isinstance(data.get("normalization"), str) and data["normalization"].lower() == "none":
                data["normalization"] = None  # as normalize's unicode_form: none is written
        return data


# ---------------------------------------------------------------- the fixer

# Above this many distinct sets of characters needed before an anchor, the rest count as "any".
_MAX_BEFORE_SETS = 16


def _lead_tables(
    lead: set[int],
    simple: set[int],
    groups: dict[frozenset[int], list[str]],
    previous: dict[frozenset[int], list[frozenset[int] | None]],
) -> tuple[np.ndarray, np.ndarray]:
    """Tables for ``text_kernels.lead_positions``: where the scan (a ``lead`` character, then a group's
    branches after the anchor, or a ``simple`` character) can match. Kind 0: no lead character; 1: it
    can match; k >= 2: only after a character of row k - 2 of the second table, the union of what the
    lookbehind of every branch anchored on that character needs just before it (a superset of the
    scan's matches, which are then tried one by one)."""
    kind = np.zeros(0x110000, np.uint8)
    kind[sorted(lead)] = 1
    unions: dict[int, set[int]] = {}
    for anchor in groups:
        needs = previous.get(anchor)
        for c in anchor:
            if c in simple or needs is None or None in needs or len(needs) != len(groups[anchor]):
                unions[c] = set()  # can match after anything
            elif unions.get(c, True) != set():
                unions.setdefault(c, set()).update(*needs)
    rows: dict[frozenset[int], int] = {}
    for c, chars in unions.items():
        if chars and max(chars) < 0x10000 and (frozenset(chars) in rows or len(rows) < _MAX_BEFORE_SETS):
            kind[c] = 2 + rows.setdefault(frozenset(chars), len(rows))
    before = np.zeros((max(len(rows), 1), 0x10000), np.bool_)
    for chars, row in rows.items():
        before[row, sorted(chars)] = True
    return kind, before


class FastFixer:
    """``ftfy.fix_text(text, config)`` with identical output, skipping work that cannot change text."""

    def __init__(self, config: TextFixerConfig) -> None:
        # explain=True: ftfy then honours restore_byte_a0 & co. (with explain=False it applies
        # fix_encoding with default sub-options); it also names the fixes for the report.
        self.config = config._replace(explain=True)
        self.quiet_html = self.config._replace(unescape_html=False)
        groups: dict[frozenset[int], list[str]] = {}
        if config.fix_encoding:
            groups.update(_BADNESS_GROUPS)
        if config.unescape_html:
            groups[frozenset({ord("&")})] = [_ENTITY_BRANCH]
        # Each fixer with the characters it needs: it only runs on text containing one of them.
        self.fixers: list[tuple[str, Callable[[str], str], frozenset[str]]] = [
            (name, getattr(fixes, name), frozenset(map(chr, _FIXER_CHARS[name])))
            for name in _FIXER_ORDER
            if getattr(config, name)
        ]
        simple: set[int] = set().union(*(_FIXER_CHARS[name] for name, _, _ in self.fixers))
        self.simple = re.compile(_charclass(simple)) if simple else None
        # One scan finds both: group 1 = "heavy" (entity or possible mojibake: ftfy must see the
        # segment), else a character some other fixer acts on. A single leading character class
        # lets the regex engine skip ordinary text in C.
        self._groups = groups
        parts = ([f"({_after_anchor(groups)})"] if groups else []) + ([f"(?<={_charclass(simple)})"] if simple else [])
        lead = set().union(simple, *groups)
        self.scan = re.compile(_charclass(lead) + "(?:" + "|".join(parts) + ")") if parts else None
        self._lead_kind, self._lead_before = _lead_tables(lead, simple, groups, _BADNESS_PREVIOUS)
        self.normalization = config.normalization
        # The scan's table also marks the characters that keep a text from being NFC at a glance (lead_scan): a
        # text without one needs no unicodedata.is_normalized (~1.6 ns a character, a third of the stage's
        # time on clean web text). Other forms: none marked, the scan's answer is not used.
        self._scan_kind = self._lead_kind.copy()
        if self.normalization == "NFC":
            self._scan_kind[not_nfc_safe()] |= NOT_NFC_SAFE
        self.max_len = config.max_decode_length

    @functools.cached_property
    def heavy(self) -> re.Pattern[str] | None:
        """An entity or possible mojibake (a segment ftfy must see). Only texts longer than
        max_decode_length and configs without a scan need it: compiled on first use (~0.02 s)."""
        groups = self._groups
        return re.compile(_charclass(set().union(*groups)) + _after_anchor(groups)) if groups else None

    def _leads(self, text: str) -> tuple[list[int], bool]:
        """Where the scan can match in ``text`` (a superset of its matches), and whether ``text`` is NFC by
        ``lead_scan``'s table (and NFC is the form: False says nothing)."""
        leads, nfc = lead_scan(code_points(text), self._scan_kind, self._lead_before)
        return leads.tolist(), nfc and self.normalization == "NFC"

    def _is_clean(self, text: str, leads: list[int]) -> bool:
        """No step of ftfy's loop can change ``text``, a text in the normalization form, given its ``_leads``.
        (The scan tried only where it can match: the regex engine's own skip costs ~2.5 ns a character, the
        kernel ~0.5.)"""
        scan = self.scan
        return scan is None or all(scan.match(text, at) is None for at in leads)

    def _ftfy(self, segment: str, html_off: bool, kinds: set[str]) -> str:
        fixed, steps = ftfy.fix_and_explain(segment, self.quiet_html if html_off else self.config)
        if fixed != segment:
            kinds.update(k for k in (fix_kind(*s) for s in steps or ()) if k)
        return fixed

    def _light(
        self,
        block: str,
        offset: int,
        lt: int,
        kinds: set[str],
        present: set[str] | None = None,
        normalized: bool = False,
    ) -> str:
        """Whole segments with no entity and no possible mojibake: ftfy's first round minus the two
        steps that cannot act, kept if a second round would change nothing. ``present``: the
        characters of the block some fixer acts on, if the caller knows them; ``normalized``: the caller
        knows the block to be in the normalization form (``lead_scan``)."""
        if present is None:
            present = set(self.simple.findall(block)) if self.simple is not None else set()
        if not present and (self.normalization is None or normalized):
            return block
        text, done = block, []
        for name, fixer, needs in self.fixers:
            if needs.isdisjoint(present):  # invariant: present holds every such character of text
                continue
            char_map = _CHAR_MAPS.get(name)
            if char_map is None:
                fixed = fixer(text)
                if fixed != text:
                    present = set(self.simple.findall(fixed)) if self.simple is not None else set()
            else:
                fixed = text
                for char in needs.intersection(present):
                    fixed = fixed.replace(char, char_map[char])
                    present.update(char_map[char])
            if fixed != text:
                done.append(name)
                text = fixed
        leads, nfc = ([], normalized) if text is block else self._leads(text)  # (a text known NFC is left as it is)
        if self.normalization is not None and not nfc:
            # Not a check first (unicodedata.is_normalized of a text with a "maybe" character normalizes it
            # whole, ~10 ns a character): the form is applied at once (NFC: to the lines that need it) and compared.
            form, kind = self.normalization, self._scan_kind
            fixed = nfc_by_line(text, kind, NOT_NFC_SAFE) if form == "NFC" else unicodedata.normalize(form, text)
            if fixed != text:
                done.append("normalize")
                text = fixed
                leads = self._leads(text)[0]
        # (In the form now: the form of a text in it is that text.)
        if text == block or self._is_clean(text, leads):
            kinds.update("normalization" if n == "normalize" else FIX_KINDS[n] for n in done)
            return text
        # ftfy would run another round: let it do the whole thing, segment by segment.
        return self._segments(block, offset, lt, kinds, light=False)

    def _segments(self, text: str, offset: int, lt: int, kinds: set[str], light: bool) -> str:
        """ftfy's own loop over segments (lines, cut at max_decode_length)."""
        out: list[str] = []
        pos = 0
        while pos < len(text):
            end = min(text.find("\n", pos) + 1 or len(text), pos + self.max_len)
            segment = text[pos:end]
            if not light or (self.heavy is not None and self.heavy.search(segment)):
                out.append(self._ftfy(segment, 0 <= lt < offset + end, kinds))
            else:
                out.append(self._light(segment, offset + pos, lt, kinds))
            pos = end
        return "".join(out)

    def fix(self, text: str, kinds: set[str] | None = None) -> str:
        """Fixed text; the kinds of fixes made are added to ``kinds``."""
        kinds = set() if kinds is None else kinds
        # ftfy turns entity decoding off for good at the first segment containing '<'.
        lt = text.find("<") if self.config.unescape_html == "auto" else -1
        if len(text) > self.max_len:  # segments may be cut inside a line: follow ftfy's loop
            return self._segments(text, 0, lt, kinds, light=True)
        if not self._groups or self.scan is None:  # (no groups: no heavy pattern, without compiling it)
            return self._light(text, 0, lt, kinds)
        out: list[str] = []
        pos = 0
        present: set[str] = set()  # characters some fixer acts on, between pos and the next heavy segment
        # The scan only from the positions where it can match (a compiled pass: the regex engine's own
        # skip of ordinary text is ~2.5 ns a character, and most "•" cannot start a match).
        scan = self.scan
        leads, nfc = self._leads(text)  # (NFC: then every block of the text is NFC too)
        for at in leads:
            if at < pos:  # in a segment already given to ftfy
                continue
            match = scan.match(text, at)
            if match is None:
                continue
            if match.group(1) is None:
                present.add(match.group())
                continue
            start = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at) + 1 or len(text)
            if start > pos:
                out.append(self._light(text[pos:start], pos, lt, kinds, present, nfc))
            out.append(self._ftfy(text[start:end], 0 <= lt < end, kinds))
            pos, present = end, set()
        if pos == 0:
            return self._light(text, 0, lt, kinds, present, nfc)
        if pos < len(text):
            out.append(self._light(text[pos:], pos, lt, kinds, present, nfc))
        return "".join(out)


def fix_text(text: str, config: TextFixerConfig) -> str:
    """Same result as ``ftfy.fix_text(text, config)``, faster."""
    return FastFixer(config).fix(text)


# ---------------------------------------------------------------- the stage


class EncodingStage(Stage):
    """Repair mojibake, HTML entities and bad Unicode exactly like ftfy, skipping clean text."""

    name = "encoding"
    Options = EncodingOptions

    def __init__(self, options: EncodingOptions | None = None) -> None:
        super().__init__(options)
        fields = {k: getattr(self.options, k) for k in TextFixerConfig._fields if k != "explain"}
        self.ftfy_config = TextFixerConfig(**fields, explain=True)
        self.fixer = FastFixer(self.ftfy_config)

    def process(self, doc: Document) -> None:
        encoding = doc.meta.get("encoding")
        if encoding:
            self.stat_update(f"decoded-{encoding}")
        if doc.meta.get("lone_surrogates"):  # escaped lone surrogates the reader replaced by U+FFFD
            self.stat_update("lone-surrogates-replaced", doc.meta["lone_surrogates"])
        kinds: set[str] = set()
        fixed = self.fixer.fix(doc.text, kinds)
        if fixed != doc.text:
            self.stat_update("doc-changed")
            for kind in sorted(kinds):
                self.stat_update(f"doc-fixed-{kind}")
            doc.text = fixed
