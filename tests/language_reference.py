"""Python definitions the language stage is tested against: its compiled choice of a main language
(`language_kernels.profile_choice` with `LanguageStage._cheap_choice`), what the stage ran before
session 19 compiled it; and the quotation-mark scans (`_open_mark`, `_closing_mark`) a character at a
time, as before session 20. Kept here as the oracles, not in the stage."""

from __future__ import annotations

import math

from pipeline.stages.language import _MAIN_MARGIN


def best_two(scores: dict[str, float]) -> tuple[str, float]:
    """The first language of ``sorted(scores, key=lambda k: (-scores[k], k))`` and the second one's
    score (-inf if none): the best score's first name, and the next score (the same one when
    languages tie)."""
    values = list(scores.values())
    top = max(values)
    if values.count(top) > 1:
        return min([k for k, v in scores.items() if v == top]), top
    best = list(scores)[values.index(top)]
    values.remove(top)
    return best, max(values, default=-math.inf)


def runner_up(scores: dict[str, float], main: str) -> str | None:
    """``max((k for k in scores if k != main), key=lambda k: (scores[k], k), default=None)``: the
    highest score's last name."""
    names, values = list(scores), list(scores.values())
    if main in scores:
        i = names.index(main)
        del names[i], values[i]
    if not values:
        return None
    top = max(values)
    if values.count(top) == 1:
        return names[values.index(top)]
    return max([k for k, v in zip(names, values, strict=True) if v == top])


def cheap_main(n_words: int, scores: dict[str, float], hits: dict[str, int]) -> tuple[str | None, str | None]:
    """The main language from the word profiles' scores of the words when they tell it safely (else
    None), and the profiles' best guess (None when under 3 listed words)."""
    if not scores:
        return None, None
    best, second = best_two(scores)
    # clear winner: enough listed words, a fair share of the text, and a wide margin
    if hits[best] >= 8 and hits[best] >= 0.1 * n_words and scores[best] - second >= _MAIN_MARGIN:
        return best, best
    return None, best if hits[best] >= 3 else None


def open_mark(text: str, s: int, e: int) -> int | None:
    """`language._open_mark` a character at a time, as it was before session 20 stepped over the
    marks only: the last opening mark in [s, e) not closed in it (a quote or bracket at the start of a
    word), or None."""
    from pipeline.stages.language import _QUOTE_PAIRS

    open_at: list[int] = []
    for k in range(s, e):
        c = text[k]
        if open_at and c in _QUOTE_PAIRS[text[open_at[-1]]]:
            open_at.pop()
        elif c in _QUOTE_PAIRS and (k + 1 < e and not text[k + 1].isspace()) and (k == s or not text[k - 1].isalnum()):
            open_at.append(k)
    return open_at[-1] if open_at else None


def closing_mark(text: str, s: int, e: int, opener: str, closers: str) -> int | None:
    """`language._closing_mark` a character at a time: where in [s, e) a quotation opened by `opener`
    before `s` closes (nested pairs skipped)."""
    depth = 0
    for k in range(s, e):
        c = text[k]
        if c in closers and (depth == 0 or opener == c):
            if depth == 0:
                return k
            depth -= 1
        elif c == opener:
            depth += 1
    return None
