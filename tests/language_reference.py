"""Python definitions the language stage's compiled choice of a main language is tested against
(`language_kernels.profile_choice` with `LanguageStage._cheap_choice`): what the stage ran before
session 19 compiled it, kept here as the oracle, not in the stage."""

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
