"""Multi-pattern prefilter for the boilerplate stage's whole-line patterns and contains-phrases: one
hyperscan scan over a document's line keys (UTF-8, joined by newlines) tells which lines may match which
pattern, and exactly which lines contain a phrase, instead of one ``re`` call per line.

Exactness: each whole-line pattern is translated (from the stdlib parser's tree) into a *byte-level
superset* of itself: every ASCII character an atom matches is listed exactly (tested with ``re`` itself on
the atom alone), a non-ASCII character becomes its UTF-8 bytes (also under case folding when it has no case;
an ASCII letter's non-ASCII fold partners, İ ı ſ K, likewise), and anything else the atom may match beyond
ASCII becomes "one or more bytes >= 0x80"; large repeat bounds become open, lookarounds, anchors and word
boundaries are dropped (a pattern with a back-reference is not translated). So every line that ``re``
fullmatches is reported; the stage confirms each reported line with ``re`` (reported lines are the few
that really match; a pattern opening with a one-letter alternative is scanned as several expressions:
superset_expressions). Phrases are literal byte strings: a UTF-8 substring is a character substring.
Without the optional ``hyperscan`` package, or for patterns the stdlib parser cannot read, the stage
keeps matching every line with ``re``.
"""

from __future__ import annotations

import _sre
import contextlib
import functools
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.stages.base import CACHE_DIR, save_cache_file

try:  # optional: manylinux x86_64 wheels (pyproject's environment marker); else the stage uses re
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform
    hyperscan = None

try:
    import re._compiler as sre_compile
    import re._constants as sre_constants
    import re._parser as sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_compile  # type: ignore[no-redef]
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

# Repeat bounds above this are left open ({m,}): hyperscan builds large automata for wide bounded repeats.
MAX_BOUND = 8
# Part of the on-disk cache key: bump when the translation changes.
TRANSLATION_VERSION = 4
# Databases kept in CACHE_DIR (one per distinct pattern set: user patterns, disabled rules, tests, older
# packs): after writing a new one, all but the most recently used KEEP_DATABASES are deleted, except those
# used in the last RECENT_SECONDS (another process may be about to load one; a deleted one is only rebuilt).
KEEP_DATABASES = 16
RECENT_SECONDS = 3600
# Any non-ASCII character (and any run of them): its UTF-8 bytes are all >= 0x80.
NON_ASCII = r"[\x80-\xff]+"
_ATOMS = frozenset({sre_constants.LITERAL, sre_constants.NOT_LITERAL, sre_constants.IN, sre_constants.ANY})
_REPEATS = frozenset(
    {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, getattr(sre_constants, "POSSESSIVE_REPEAT", None)} - {None}
)
_DROPPED = frozenset({sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT})


class Untranslatable(Exception):
    """A construct the translation does not cover (the stage then keeps re for every line)."""


def available() -> bool:
    return hyperscan is not None


def _byte(code: int) -> str:
    return f"\\x{code:02x}"


def _literal_bytes(ch: str) -> str:
    return "".join(_byte(b) for b in ch.encode("utf-8", "surrogatepass"))


def _ascii_class(codes: list[int], extra: str = "") -> str:
    """A byte class of these ASCII codes (ranges merged) plus ``extra`` (a class body)."""
    if not codes:
        return "[" + extra + "]"
    parts = []
    start = prev = codes[0]
    for c in [*codes[1:], -2]:
        if c == prev + 1:
            prev = c
            continue
        parts.append(_byte(start) if start == prev else f"{_byte(start)}-{_byte(prev)}")
        start = prev = c
    return "[" + "".join(parts) + extra + "]"


class _Atom:
    """What one character atom may match, in bytes: ASCII codes (exact), exact UTF-8 strings of
    non-ASCII characters, and whether any other non-ASCII character."""

    def __init__(self, codes: list[int], exact: list[str], non_ascii: bool) -> None:
        self.codes, self.exact, self.non_ascii = codes, exact, non_ascii

    def single(self) -> str:
        alts = []
        if self.codes:
            alts.append(_ascii_class(self.codes))
        alts.extend(self.exact)
        if self.non_ascii:
            alts.append(NON_ASCII)
        if not alts:
            raise Untranslatable("an atom matching no character")
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    def repeated(self, low: int, high: int | None) -> str:
        """The atom repeated low..high times (high None: open)."""
        if self.non_ascii:
            # Every character is at least one byte: a byte class with the non-ASCII bytes, open above.
            body = _ascii_class(self.codes, "\\x80-\\xff")
            high = None
        else:
            body = self.single()
            if not body.startswith("[") and len(body) > 4:
                body = f"(?:{body})"
        return body + _bounds(low, high)


def _bounds(low: int, high: int | None) -> str:
    low = min(low, MAX_BOUND)
    if high is None or high > MAX_BOUND:
        return "*" if low == 0 else ("+" if low == 1 else f"{{{low},}}")
    return "" if low == high == 1 else f"{{{low},{high}}}"


def _is_key_space(code: int) -> bool:
    """Whitespace a key never holds (normalise folds every str.isspace run into one space)."""
    return code != 32 and chr(code).isspace()


def _atom(op: Any, av: Any, flags: int, state: Any) -> _Atom:
    """Byte-level superset of one character atom, on keys (see superset_expression)."""
    alone = sre_compile.compile(sre_parse.SubPattern(state, [(op, av)]), flags)
    codes = [c for c in range(128) if not _is_key_space(c) and alone.fullmatch(chr(c))]
    if flags & sre_constants.SRE_FLAG_IGNORECASE:
        folded = _ignorecase_atom(op, av, alone, codes)
        # Else conservative: case folding of other letters reaches further (Greek, Cyrillic, ...).
        return folded if folded is not None else _Atom(codes, [], True)
    if op is sre_constants.LITERAL:
        return _Atom(codes, [_literal_bytes(chr(av))] if av >= 128 else [], False)
    if op is sre_constants.IN:
        members: list[int] = []
        for iop, iav in av:
            if iop is sre_constants.LITERAL:
                members.extend([iav] if iav >= 128 else [])
            elif iop is sre_constants.RANGE:
                members.extend(range(max(iav[0], 128), iav[1] + 1))
            elif iop is sre_constants.CATEGORY and iav in _ASCII_ONLY_CATEGORIES:
                continue  # on keys: see superset_expression
            else:
                return _Atom(codes, [], True)  # negated set, \w, \S, ...
        if len(members) > 32:
            return _Atom(codes, [], True)
        return _Atom(codes, [_literal_bytes(chr(m)) for m in members], False)
    return _Atom(codes, [], True)  # NOT_LITERAL, ANY


# The non-ASCII characters that a case-insensitive ASCII letter matches in `re` (İ ı ſ K): its lower-case
# form (sre's simple lower-casing) is an ASCII letter, or it is one of the compiler's case "fixes" of one.
# A test checks every code point against "(?i)[a-z]".
ASCII_FOLD_PARTNERS = (0x130, 0x131, 0x17F, 0x212A)
# Ranges of non-ASCII members listed one by one up to this size (else: any non-ASCII character).
MAX_LISTED = 32


def _ignorecase_atom(op: Any, av: Any, alone: Any, codes: list[int]) -> _Atom | None:
    """The exact byte-level atom of a case-insensitive atom whose members are ASCII characters and non-ASCII
    characters without case (CJK, fullwidth colon...), None for others. `re` compiles an uncased character as
    a plain literal, and a case-insensitive test compares sre's lower-case form of the text's character:
    a non-ASCII character reaches an ASCII member only as one of ASCII_FOLD_PARTNERS (tested here with the
    atom itself), an uncased member only as itself (no character lower-cases to an uncased one)."""
    partners = [_literal_bytes(chr(c)) for c in ASCII_FOLD_PARTNERS if alone.fullmatch(chr(c))]
    members: list[int] = []
    if op is sre_constants.LITERAL:
        members = [av] if av >= 128 else []
    elif op is sre_constants.IN:
        for iop, iav in av:
            if iop is sre_constants.LITERAL:
                members.extend([iav] if iav >= 128 else [])
            elif iop is sre_constants.RANGE:
                members.extend(range(max(iav[0], 128), iav[1] + 1))
            elif not (iop is sre_constants.CATEGORY and iav in _ASCII_ONLY_CATEGORIES):
                return None  # negated set, \w, \S, ...
            if len(members) > MAX_LISTED:
                return None
    else:
        return None  # NOT_LITERAL, ANY
    if any(map(_sre.unicode_iscased, members)):
        return None
    return _Atom(codes, partners + [_literal_bytes(chr(m)) for m in members], False)


# \s matches non-ASCII characters that keys never hold (no whitespace but the space). \d is not here: its
# non-ASCII digits (Arabic-Indic, fullwidth, ...) make it "any non-ASCII character" like \w.
_ASCII_ONLY_CATEGORIES = frozenset({sre_constants.CATEGORY_SPACE})


def _items(items: Any, flags: int, state: Any) -> str:
    out = []
    for op, av in items:
        if op in _ATOMS:
            out.append(_atom(op, av, flags, state).single())
        elif op is sre_constants.SUBPATTERN:
            _group, add, delete, sub = av
            out.append("(?:" + _items(sub, (flags | add) & ~delete, state) + ")")
        elif op is sre_constants.BRANCH:
            out.append("(?:" + "|".join(_items(alt, flags, state) for alt in av[1]) + ")")
        elif op in _REPEATS:
            low, high, sub = av
            open_high = None if high is sre_constants.MAXREPEAT else high
            if len(sub) == 1 and sub[0][0] in _ATOMS:
                out.append(_atom(sub[0][0], sub[0][1], flags, state).repeated(low, open_high))
            else:
                out.append("(?:" + _items(sub, flags, state) + ")" + _bounds(low, open_high))
        elif op is getattr(sre_constants, "ATOMIC_GROUP", None):
            out.append("(?:" + _items(av, flags, state) + ")")
        elif op in _DROPPED:
            continue  # an assertion only removes matches: dropping it keeps a superset
        else:  # back-references (their meaning changes inside the stage's alternation), conditionals
            raise Untranslatable(str(op))
    return "".join(out)


def superset_expression(pattern: str) -> str:
    """A hyperscan expression (bytes mode, multi-line) that ends a match at the end of at least every
    line (a UTF-8 key) that ``re.fullmatch(pattern, key)`` matches. Raises Untranslatable."""
    try:
        tree = sre_parse.parse(pattern)
    except Exception as err:  # noqa: BLE001 - `regex`-only syntax: not for the stdlib parser
        raise Untranslatable(str(err)) from err
    # Anchored at the line's end only: the stage's keys are joined by newlines and scanned at once, and the
    # hyperscan 5.4 of the wheel misses some matches of line-start anchored (^ or \n) patterns after a long
    # line (tests/test_boilerplate.py keeps an example); a pattern free at its start is a superset as well.
    return "(?:" + _items(tree.data, tree.state.flags, tree.state) + ")$"


# An alternative that is a literal of at most this many UTF-8 bytes is weak: hyperscan cannot start from it
# (it occurs everywhere), so a pattern holding one at its start is matched by an automaton over every byte.
WEAK_LITERAL_BYTES = 2


def superset_expressions(pattern: str) -> list[str]:
    """superset_expression as one expression or several (their union a superset of it): when the pattern
    opens with an alternation some of whose alternatives are weak literals ("(?:facebook|twitter|x|...)"),
    each weak one gets an expression of its own and the others one together. Cheaper to scan: the pack's
    share-button pattern, with its "x", took a third of the scan of a document's keys as one expression.
    A leading repeat counts once (a match's suffix from its last iteration on matches that way: the
    expressions are free at their start). Raises Untranslatable."""
    whole = superset_expression(pattern)
    tree = sre_parse.parse(pattern)
    split = _leading_split(list(tree.data), tree.state.flags, tree.state)
    if split is None:
        return [whole]
    return ["(?:" + part + ")$" for part in split]


def _weak(alternative: Any) -> bool:
    if not alternative or any(op is not sre_constants.LITERAL for op, _av in alternative):
        return False
    return sum(len(chr(av).encode("utf-8", "surrogatepass")) for _op, av in alternative) <= WEAK_LITERAL_BYTES


def _leading_split(items: list[Any], flags: int, state: Any) -> list[str] | None:
    """The translations of ``items`` (a sequence, free at its start) split at a leading alternation with
    weak literals (superset_expressions), or None when there is none."""
    if not items:
        return None
    op, av = items[0]
    if op is sre_constants.SUBPATTERN:
        _group, add, delete, sub = av
        inner = _leading_split(list(sub), (flags | add) & ~delete, state)
    elif op in _REPEATS and av[0] >= 1:
        inner = _leading_split(list(av[2]), flags, state)
    elif op is sre_constants.BRANCH:
        alternatives = av[1]
        weak = [a for a in alternatives if _weak(a)]
        if not weak or len(weak) == len(alternatives):
            return None
        strong = [a for a in alternatives if not _weak(a)]
        inner = ["(?:" + "|".join(_items(a, flags, state) for a in strong) + ")"]
        inner += ["(?:" + _items(a, flags, state) + ")" for a in weak]
    else:
        return None
    if inner is None:
        return None
    rest = _items(items[1:], flags, state)
    return ["(?:" + part + ")" + rest for part in inner]


def phrase_expression(phrase: str) -> str:
    """A literal phrase as a hyperscan expression of its UTF-8 bytes."""
    return "".join(_byte(b) for b in phrase.encode("utf-8", "surrogatepass"))


def _empty() -> np.ndarray:
    array = np.empty(0, dtype=np.int64)
    array.flags.writeable = False
    return array


_NO_REPORTS = (_empty(), _empty())


class Prefilter:
    """One hyperscan database: whole-line patterns (ids 0..patterns-1, supersets) then phrases. ``whole``:
    whether the whole-line patterns are in it (False: some pattern could not be translated, the stage
    tries every line with re)."""

    def __init__(self, patterns: list[str] | None, phrases: list[str]) -> None:
        self._db, self.whole, self.patterns = _database(patterns, phrases)
        # Scratch space is per thread (stages of one process share this object: build()).
        self._local = threading.local()

    def scan(self, data: bytes, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(line, id) of every report in ``data`` (lines joined by newlines; ``ends[j]`` the byte offset
        where line j ends). A whole-line pattern is reported once per line it may match, a phrase once
        per occurrence."""
        found: list[int] = []
        if self._db is not None:
            add = found.append

            def on_match(ident: int, _start: int, end: int, _flags: int, _context: Any) -> None:
                add(ident)
                add(end)

            scratch = getattr(self._local, "scratch", None)
            if scratch is None:
                scratch = self._local.scratch = hyperscan.Scratch(self._db)
            self._db.scan(data, match_event_handler=on_match, scratch=scratch)
        if not found:  # most documents (numpy calls cost µs each): shared read-only empty arrays
            return _NO_REPORTS
        pairs = np.array(found, dtype=np.int64).reshape(-1, 2)
        return ends.searchsorted(pairs[:, 1], side="left"), pairs[:, 0]


def _translate(patterns: list[str] | None, phrases: list[str]) -> tuple[list[str], list[int], list[int], bool, int]:
    """(expressions, their ids, flags, whether the whole-line patterns are in, how many) for the database:
    a whole-line pattern's expressions (superset_expressions) carry its index, the phrases the ids after."""
    exprs: list[str] = []
    ids: list[int] = []
    whole = patterns is not None
    count = 0
    if patterns is not None:
        try:
            for i, pattern in enumerate(patterns):
                parts = superset_expressions(pattern)
                exprs += parts
                ids += [i] * len(parts)
            count = len(patterns)
        except Untranslatable:
            whole, exprs, ids = False, [], []
    flags = [hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_ALLOWEMPTY] * len(exprs) + [0] * len(phrases)
    ids += range(count, count + len(phrases))
    return exprs + [phrase_expression(p) for p in phrases], ids, flags, whole, count


def _database(patterns: list[str] | None, phrases: list[str]) -> tuple[Any, bool, int]:
    """(compiled database or None when empty, whole, pattern count), from the on-disk cache when the same
    patterns were translated and compiled before (~1.5 s for the shipped packs; loading takes a few ms).
    The cache lives beside the package like numba's (``__pycache__``); an unwritable place only means
    compiling in each process."""
    source = json.dumps([hyperscan.__version__, TRANSLATION_VERSION, patterns, phrases])
    path = CACHE_DIR / f"boilerplate_prefilter-{hashlib.sha256(source.encode('utf-8')).hexdigest()[:24]}.hsdb"
    try:
        head, _, blob = path.read_bytes().partition(b"\n")
        whole, count = json.loads(head)
        loaded = (hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK) if blob else None), whole, count
        _touch(path)
        return loaded
    except Exception:  # noqa: BLE001 - missing, unreadable or stale: translate and compile instead
        pass
    exprs, ids, flags, whole, count = _translate(patterns, phrases)
    db = None
    if exprs:
        db = hyperscan.Database()
        encoded = [e.encode("ascii") for e in exprs]
        db.compile(expressions=encoded, ids=ids, elements=len(exprs), flags=flags)
    if save_cache_file(path, json.dumps([whole, count]).encode("ascii") + b"\n" + (hyperscan.dumpb(db) if db else b"")):
        prune_cache(CACHE_DIR, KEEP_DATABASES, RECENT_SECONDS)
    return db, whole, count


def _touch(path: Path) -> None:
    """Mark a database as used (its modification time orders prune_cache's choice)."""
    with contextlib.suppress(OSError):  # a read-only cache: nothing is written there, nothing pruned
        os.utime(path)


def prune_cache(folder: Path, keep: int = KEEP_DATABASES, recent: float = RECENT_SECONDS) -> list[Path]:
    """Delete the databases in ``folder`` beyond the ``keep`` most recently used (loaded or written), but
    none used in the last ``recent`` seconds, and temporary files of writers older than that (a crashed
    process). Safe with other processes at work: a file deleted under a reader is read already or makes it
    rebuild; a file already gone is skipped. Returns the deleted paths."""
    now = time.time()
    dated = []
    for path in folder.glob("boilerplate_prefilter-*"):
        try:
            dated.append((path.stat().st_mtime, path))
        except OSError:
            continue  # deleted meanwhile
    dated.sort(reverse=True)
    databases = [(t, p) for t, p in dated if p.suffix == ".hsdb"]
    stale = [p for t, p in databases[keep:] if now - t > recent]
    stale += [p for t, p in dated if p.suffix == ".tmp" and now - t > recent]
    deleted = []
    for path in stale:
        try:
            path.unlink()
            deleted.append(path)
        except OSError:
            continue
    return deleted


@functools.lru_cache(maxsize=8)
def _cached(patterns: tuple[str, ...] | None, phrases: tuple[str, ...]) -> Prefilter:
    return Prefilter(list(patterns) if patterns is not None else None, list(phrases))


def build(patterns: list[str] | None, phrases: list[str]) -> Prefilter | None:
    """The prefilter of these whole-line patterns (None: leave them to re) and phrases, shared by the
    stages of a process with the same ones; None without hyperscan."""
    if hyperscan is None:
        return None
    return _cached(tuple(patterns) if patterns is not None else None, tuple(phrases))
