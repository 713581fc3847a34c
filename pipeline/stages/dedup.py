"""dedup: drop repeated paragraphs (exact and MinHash near-duplicates) and duplicate documents.

The first occurrence in input order is kept. Signatures equal datasketch's ``MinHash`` with the
"affine32" scheme and ``hashfunc=xxhash.xxh32_intdigest`` (see ``tests/test_dedup.py``), computed
for all permutations at once with numpy; candidates come from LSH bands and are verified by the
estimated (or exact) Jaccard before anything is removed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import datasketch
import numpy as np
import regex
import xxhash
from datasketch.lsh import _optimal_param
from pydantic import Field, model_validator

from pipeline.document import Document
from pipeline.stages.base import Stage, StageOptions

# Saved with any index: a signature is only comparable under the same scheme.
HASH_SCHEME = {
    "datasketch": datasketch.__version__,
    "scheme": "affine32",
    "hashfunc": "xxh32_intdigest(utf-8 shingle)",
}

_PUNCT_SYMBOLS = regex.compile(r"[\p{P}\p{S}]+")
_DIGITS = regex.compile(r"\d")
_SENTENCE_END = tuple('.!?:;"”’»)。！？')


class DedupOptions(StageOptions):
    scope: Literal["corpus", "document"] = Field(
        "corpus", description="Find repeats across the whole run ('corpus') or only inside each document."
    )
    unit: Literal["auto", "paragraph", "line"] = Field(
        "auto",
        description="Unit of dedup: blank-line paragraphs, lines, or 'auto' (lines, except blocks of "
        "hard-wrapped lines that form one paragraph).",
    )
    min_words: int = Field(3, ge=1, description="Units with fewer words are never removed.")
    minhash_min_words: int = Field(
        10, ge=1, description="Units with at least this many words are also matched as near-duplicates."
    )
    lowercase: bool = Field(True, description="Ignore case when comparing units.")
    strip_punctuation: bool = Field(True, description="Ignore punctuation and symbols when comparing units.")
    normalize_digits: bool = Field(True, description="Treat all digits as equal (0) when comparing units.")
    shingle: Literal["word", "char"] = Field("word", description="MinHash shingles: word or character n-grams.")
    ngram: int = Field(5, ge=1, description="Shingle size (words or characters).")
    num_perm: int = Field(128, ge=16, le=1024, description="Number of MinHash permutations.")
    threshold: float = Field(
        0.75, gt=0, le=1, description="Remove a unit whose Jaccard similarity to a kept one is at least this."
    )
    bands: int | None = Field(None, ge=1, description="LSH bands (null: derived from threshold and num_perm).")
    rows: int | None = Field(None, ge=1, description="LSH rows per band (null: derived with bands).")
    verify: Literal["estimate", "exact"] = Field(
        "estimate",
        description="Check LSH candidates by the signatures' estimated Jaccard, or by exact shingle "
        "sets (more memory).",
    )
    seed: int = Field(1, description="MinHash permutation seed (datasketch's default is 1).")
    documents: bool = Field(
        True, description="Also reject whole documents that duplicate an earlier one (exactly or near)."
    )
    document_threshold: float = Field(
        0.8, gt=0, le=1, description="Jaccard similarity at which a document counts as a near-duplicate."
    )
    max_duplicate_fraction: float = Field(
        0.8, gt=0, le=1, description="Reject a document when at least this share of its text is duplicate."
    )

    @model_validator(mode="after")
    def _bands_fit(self) -> DedupOptions:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither")
        if self.bands is not None and self.rows is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands x rows ({self.bands * self.rows}) exceeds num_perm ({self.num_perm})")
        return self


def _fmix32(h: np.ndarray) -> np.ndarray:
    # MurmurHash3's finalizer, as datasketch applies it before the affine permutations.
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class MinHasher:
    """Vectorized MinHash equal to ``datasketch.MinHash(num_perm, seed, hashfunc=xxh32_intdigest)``."""

    def __init__(self, num_perm: int, seed: int) -> None:
        self.num_perm = num_perm
        self.seed = seed
        a, b = datasketch.MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        self.a = np.asarray(a, dtype=np.uint32)
        self.b = np.asarray(b, dtype=np.uint32)

    def hashes(self, shingles: list[str]) -> np.ndarray:
        return np.fromiter(
            (xxhash.xxh32_intdigest(s.encode("utf-8")) for s in shingles), dtype=np.uint32, count=len(shingles)
        )

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        if hashes.size == 0:
            return np.full(self.num_perm, np.uint32(0xFFFFFFFF), dtype=np.uint32)
        mixed = _fmix32(hashes)[:, None]
        with np.errstate(over="ignore"):
            return (mixed * self.a + self.b).min(axis=0)


@dataclass
class LSHIndex:
    """Band buckets over signatures; each entry remembers the document that owns it."""

    bands: int
    rows: int
    buckets: list[dict[bytes, int]] = field(default_factory=list)
    signatures: list[np.ndarray] = field(default_factory=list)
    shingle_sets: list[np.ndarray | None] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.buckets = [{} for _ in range(self.bands)]

    def _keys(self, sig: np.ndarray) -> list[bytes]:
        r = self.rows
        return [sig[i * r : (i + 1) * r].tobytes() for i in range(self.bands)]

    def query(self, sig: np.ndarray, shingles: np.ndarray | None, threshold: float) -> tuple[int, float] | None:
        """The earliest indexed entry at least ``threshold`` similar, with its similarity."""
        candidates = {b[k] for b, k in zip(self.buckets, self._keys(sig), strict=True) if k in b}
        for entry in sorted(candidates):  # earliest first: deterministic
            if shingles is not None and self.shingle_sets[entry] is not None:
                other = self.shingle_sets[entry]
                union = np.union1d(shingles, other).size
                sim = np.intersect1d(shingles, other, assume_unique=True).size / union if union else 1.0
            else:
                sim = float(np.count_nonzero(self.signatures[entry] == sig)) / sig.size
            if sim >= threshold:
                return entry, sim
        return None

    def add(self, sig: np.ndarray, shingles: np.ndarray | None, owner: str) -> list[tuple[int, bytes]]:
        entry = len(self.signatures)
        self.signatures.append(sig)
        self.shingle_sets.append(shingles)
        self.owners.append(owner)
        added = []
        for band, key in enumerate(self._keys(sig)):
            if key not in self.buckets[band]:
                self.buckets[band][key] = entry
                added.append((band, key))
        return added

    def undo(self, added: list[tuple[int, bytes]], entries: int) -> None:
        for band, key in added:
            del self.buckets[band][key]
        del self.signatures[entries:], self.shingle_sets[entries:], self.owners[entries:]


def split_units(lines: list[str], unit: str) -> list[tuple[int, int]]:
    """Line ranges [start, end) of the dedup units in a document."""
    units: list[tuple[int, int]] = []
    start = None
    for i, line in enumerate([*lines, ""]):
        blank = not line.strip()
        if not blank and start is None:
            start = i
        elif blank and start is not None:
            if unit == "paragraph" or (unit == "auto" and _hard_wrapped(lines[start:i])):
                units.append((start, i))
            else:
                units.extend((j, j + 1) for j in range(start, i))
            start = None
    return units


def _hard_wrapped(block: list[str]) -> bool:
    """A block of lines broken at a fixed width (one paragraph), not one paragraph per line."""
    if len(block) < 2:
        return False
    body = block[:-1]
    unfinished = sum(1 for line in body if not line.rstrip().endswith(_SENTENCE_END))
    widths = [len(line) for line in body]
    return unfinished >= 0.6 * len(body) and min(widths) >= 30 and max(widths) <= 120


class DedupStage(Stage):
    """Remove repeated paragraphs (exact and MinHash near-duplicates) and duplicate documents."""

    name = "dedup"
    Options = DedupOptions
    cross_document = True

    def __init__(self, options: DedupOptions | None = None) -> None:
        super().__init__(options)
        o = self.options
        self.hasher = MinHasher(o.num_perm, o.seed)
        if o.bands is not None and o.rows is not None:
            self.bands, self.rows = o.bands, o.rows
        else:
            # Band for a lower similarity than the removal threshold so that true pairs near the
            # threshold still become candidates; the verification step keeps precision.
            self.bands, self.rows = _optimal_param(max(0.05, o.threshold - 0.15), o.num_perm, 0.5, 0.5)
        self.doc_bands, self.doc_rows = _optimal_param(max(0.05, o.document_threshold - 0.15), o.num_perm, 0.5, 0.5)
        self._reset()
        self.cluster_sizes: Counter[tuple[str, int]] = Counter()

    def _reset(self) -> None:
        self.exact: dict[int, str] = {}
        self.units = LSHIndex(self.bands, self.rows)
        self.doc_exact: dict[int, str] = {}
        self.docs = LSHIndex(self.doc_bands, self.doc_rows)

    # ------------------------------------------------------------ hashing helpers

    def normalize(self, text: str) -> str:
        o = self.options
        if o.lowercase:
            text = text.casefold()
        if o.strip_punctuation:
            text = _PUNCT_SYMBOLS.sub(" ", text)
        if o.normalize_digits:
            text = _DIGITS.sub("0", text)
        return " ".join(text.split())

    def shingles(self, key: str) -> list[str]:
        n = self.options.ngram
        if self.options.shingle == "char":
            return [key[i : i + n] for i in range(max(1, len(key) - n + 1))]
        words = key.split(" ")
        return [" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))]

    def _sketch(self, key: str) -> tuple[np.ndarray, np.ndarray | None]:
        hashes = self.hasher.hashes(self.shingles(key))
        exact = np.unique(hashes) if self.options.verify == "exact" else None
        return self.hasher.signature(hashes), exact

    # ------------------------------------------------------------ the stage

    def process(self, doc: Document) -> None:
        o = self.options
        if o.scope == "document":
            self._reset()
        doc_key = self.normalize(doc.text)
        doc_hash = xxhash.xxh64_intdigest(doc_key.encode("utf-8"))
        doc_sketch = None
        if o.documents:
            if doc_hash in self.doc_exact:
                self.stat_update("doc-exact-duplicate")
                original = self.doc_exact[doc_hash]
                doc.reject(self.name, f"exact duplicate of document {original}", duplicate_of=original)
                return
            doc_sketch = self._sketch(doc_key)
            hit = self.docs.query(*doc_sketch, o.document_threshold)
            if hit is not None:
                self.stat_update("doc-near-duplicate")
                original = self.docs.owners[hit[0]]
                doc.reject(
                    self.name,
                    f"near-duplicate of document {original} (Jaccard {hit[1]:.2f})",
                    duplicate_of=original,
                    jaccard=round(hit[1], 4),
                )
                return

        lines = doc.text.split("\n")
        drop: set[int] = set()
        added_exact: list[int] = []
        added_lsh: list[tuple[int, bytes]] = []
        lsh_entries = len(self.units.signatures)
        unit_chars = removed_chars = 0
        for start, end in split_units(lines, o.unit):
            text = "\n".join(lines[start:end])
            unit_chars += len(text)
            key = self.normalize(text)
            n_words = key.count(" ") + 1 if key else 0
            if n_words < o.min_words:
                continue
            h = xxhash.xxh64_intdigest(key.encode("utf-8"))
            if h in self.exact:
                rule, original, sim = "exact-paragraph", self.exact[h], 1.0
            else:
                sketch = self._sketch(key) if n_words >= o.minhash_min_words else None
                hit = self.units.query(*sketch, o.threshold) if sketch is not None else None
                if hit is None:  # first occurrence: index it and keep it
                    self.exact[h] = doc.id
                    added_exact.append(h)
                    if sketch is not None:
                        added_lsh += self.units.add(*sketch, doc.id)
                    continue
                rule, original, sim = "near-duplicate-paragraph", self.units.owners[hit[0]], hit[1]
            drop.update(range(start, end))
            removed_chars += len(text)
            self.stat_update(rule)
            self.cluster_sizes[(rule, h if rule == "exact-paragraph" else hit[0])] += 1
            doc.remove(self.name, rule, text, lines=end - start, duplicate_of=original, jaccard=round(sim, 4))

        if drop and removed_chars >= o.max_duplicate_fraction * unit_chars:
            for h in added_exact:
                del self.exact[h]
            self.units.undo(added_lsh, lsh_entries)
            self.stat_update("doc-mostly-duplicate")
            share = removed_chars / max(1, unit_chars)
            doc.reject(self.name, f"mostly duplicate content ({share:.0%} of its text repeats earlier text)")
            return
        if drop:
            doc.text = "\n".join(line for i, line in enumerate(lines) if i not in drop)
        if o.documents:
            self.doc_exact[doc_hash] = doc.id
            if doc_sketch is not None:
                self.docs.add(*doc_sketch, doc.id)

    def close(self) -> None:
        """Cluster counts for the report: how many kept units had 1, 2, ... removed copies."""
        sizes = Counter(self.cluster_sizes.values())
        for copies, clusters in sorted(sizes.items()):
            self.stat_update(f"clusters-with-{copies}-copies", clusters)
        self.stat_update("clusters", len(self.cluster_sizes))
        self.cluster_sizes.clear()
