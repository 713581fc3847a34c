"""boilerplate's first pass: the distinct line keys of a document, from one compiled pass
(``recurring_distinct``), are those of every line's key (``recurring_keys``) with the repeats dropped; their
hashes (``recurring_hashes``, the first pass's part) are xxhash's of those keys."""

from __future__ import annotations

import random
from itertools import compress

import numpy as np
import xxhash

from pipeline.document import Document
from pipeline.stages import boilerplate_kernels as kernels
from pipeline.stages.boilerplate import (
    RECURRING_MAX_CHARS,
    BoilerplateStage,
    _key_classes,
    _lower_table,
    _recurring_classes,
    _shape_classes,
)
from pipeline.stages.text_kernels import code_points


def _keys(text: str, distinct: bool, min_words: int = 4) -> tuple[list[bytes], list[int]] | None:
    points = code_points(text)
    out = np.empty(3 * points.size + 1, dtype=np.uint8)
    marks = np.empty(text.count("\n") + 1, dtype=np.uint8)
    tables = (_shape_classes(), _lower_table(), _key_classes(), RECURRING_MAX_CHARS, min_words, out, marks)
    if distinct:
        hashes = np.empty(marks.size, dtype=np.uint64)
        first = (_recurring_classes(), _lower_table(), RECURRING_MAX_CHARS, min_words)
        size, count = kernels.recurring_distinct(points, *first, out, marks, hashes)
        if size < 0:
            assert kernels.recurring_hashes(points, *first)[0] == -1
            return None
        keys = out[:size].tobytes().split(b"\n") if count else []
        # recurring_hashes: the keys' xxh3_64 (line_hash's) and whether they count, in the same order
        assert hashes[:count].tolist() == [xxhash.xxh3_64_intdigest(key) for key in keys]
        found, hashed, counted = kernels.recurring_hashes(points, *first)
        assert found == count and hashed.tolist() == hashes[:count].tolist()
        assert counted.tolist() == [mark == kernels.RECURRING_COUNTED for mark in marks[:count].tolist()]
        return keys, marks[:count].tolist()
    size = kernels.recurring_keys(points, *tables)
    keys, flags = out[:size].tobytes().split(b"\n"), marks.tolist()
    if kernels.RECURRING_FALLBACK in flags:
        return None
    found = dict(zip(compress(keys, flags), compress(flags, flags), strict=True))
    return list(found), list(found.values())


def test_distinct_keys_are_every_lines_keys_without_repeats() -> None:
    rng = random.Random(5)
    words = ["Home", "home", "NEWS", "about us", "Über", "ßtraße", "北京", "the", "a", "»", "|", "  ", "\t", "x" * 2500]
    words += ["« »", "- –", "\u00a0", "•", "\U0001f600" + "y" * 2100]  # edges and spaces; a line too long to count
    texts = [
        "",
        "\n",
        "\n\n",
        "one line",
        "Share this\nshare THIS\n  Share   this  \nshare this!",
        "北京 上海\n北京 上海",
    ]
    for _ in range(400):
        lines = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 7))) for _ in range(rng.randint(1, 30))]
        lines += rng.choices(lines, k=rng.randint(0, 10))  # repeats
        rng.shuffle(lines)
        texts.append("\n".join(lines))
    checked = 0
    for text in texts:
        expected = _keys(text, distinct=False)
        assert _keys(text, distinct=True) == expected, repr(text)
        checked += expected is not None and len(expected[0]) > 0
    assert checked > 300
    assert _keys("Σ is a letter\nplain line", distinct=True) is None  # (Python normalises such lines)


def test_prepare_part_with_lines_python_normalises() -> None:
    # A repeated line with an emoji (a key Python makes) beside one the kernel makes: each counted once.
    text = "Follow us 😀 on social media\nRead more articles here today\nFollow us 😀 on social media"
    site, hashes, counted = BoilerplateStage().prepare_part(Document("d", text, "s"))
    assert site == "s" and hashes.size == 2 and counted.tolist() == [True, True]
