"""Prototype (session 5, not in the package): four text cue columns appended to the line scorer's
context model, for ``benchmarks/line_scorer_cv.py --cues``. Importing this module patches the stage's
``ContextEnsemble.expected_features`` and ``BoilerplateStage._line_log_odds`` and the trainer's
``fit_stacked`` in this process only.

Columns (``CUE_FEATURES``, after BLOCK_FEATURES): ``lead_colon_words`` = log1p of the words before a ":"
in the first 60 characters when that prefix is at most 5 plain words and text follows ("Le puede
interesar: ...", "Foto: dpa", "Lesen Sie auch: ..."); ``ends_question`` / ``ends_exclaim`` (CTA lines
"Möchten Sie weiterlesen?", "Jetzt helfen!"); ``alternation`` = mean |difference of log1p chars| to the
+-1 candidate neighbours minus that to the +-2 ones (title/date teaser runs alternate).
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np

import benchmarks.train_line_scorer as trainer
import pipeline.stages.boilerplate as bp

CUE_FEATURES = ("lead_colon_words", "ends_question", "ends_exclaim", "alternation")
_LEAD_WORDS_RE = re.compile(r"[\w\s'’.-]+")
_CLOSERS = "\"'”’»)]"
LEAD_MAX_CHARS = 60
LEAD_MAX_WORDS = 5


def _lead_colon_words(s: str) -> float:
    colon = s.find(":", 0, LEAD_MAX_CHARS)
    lead = s[:colon]
    ok = colon > 0 and s[colon + 1 : colon + 2] == " " and len(s) > colon + 2 and _LEAD_WORDS_RE.fullmatch(lead)
    words = len(lead.split()) if ok else 0
    return math.log1p(words) if words <= LEAD_MAX_WORDS else 0.0


def cue_features(lines: list[str], cand: list[int]) -> np.ndarray:
    """One row of CUE_FEATURES per candidate line (text only: no scores needed)."""
    m = len(cand)
    x = np.zeros((m, len(CUE_FEATURES)))
    if not m:
        return x
    size = np.empty(m)
    for k, i in enumerate(cand):
        s = lines[i].strip()
        x[k, 0] = _lead_colon_words(s)
        end = s.rstrip(_CLOSERS)
        x[k, 1] = end.endswith(("?", "？"))
        x[k, 2] = end.endswith(("!", "！"))
        size[k] = math.log1p(len(s))
    pad = np.concatenate(([np.nan, np.nan], size, [np.nan, np.nan]))
    with np.errstate(all="ignore"), warnings.catch_warnings():  # all-NaN columns: 1- or 2-line documents
        warnings.simplefilter("ignore", RuntimeWarning)
        d1 = np.nanmean(np.stack([np.abs(size - pad[1:-3]), np.abs(size - pad[3:-1])]), axis=0)
        d2 = np.nanmean(np.stack([np.abs(size - pad[0:-4]), np.abs(size - pad[4:])]), axis=0)
    alt = d1 - d2
    x[:, 3] = np.where(np.isfinite(alt), alt, 0.0)  # fewer than 3 lines: no pattern
    return x


_OLD_FEATURES = bp.ContextEnsemble.expected_features()


def _expected_features() -> list[str]:
    return [*_OLD_FEATURES, *CUE_FEATURES]


def _line_log_odds(self: bp.BoilerplateStage, lines: list[str], v: bp.RuleVerdicts, cand: list[int]) -> np.ndarray:
    """BoilerplateStage._line_log_odds with the cue columns appended (one more hstack operand)."""
    x = bp.line_features(lines, v, cand)
    odds = self._scorer.log_odds(x)  # type: ignore[union-attr]
    if self._context is None:
        return odds
    words = self._context.compiled.candidate_words(lines, cand)
    if bp.lexicon_coverage(words.weight) < bp.CONTEXT_MIN_KNOWN_SHARE:
        return odds
    context = bp.context_features(lines, v, cand, odds)
    lexical = bp.lexical_features(words)
    document = bp.document_features(words, v, cand)
    blocks = bp.block_features(v, cand, odds)
    cues = cue_features(lines, cand)
    return self._context.log_odds(np.hstack((x, context, lexical, document, blocks, cues)))


def _fit_stacked(rows: dict, ids: list[str]) -> dict:
    """trainer.fit_stacked with the cue columns appended."""
    stacked = {}
    for part in range(trainer.CONTEXT_FOLDS):
        held = [i for i in ids if trainer.context_fold(i) == part]
        others = [i for i in ids if trainer.context_fold(i) != part]
        scorer = bp.TreeEnsemble(trainer.fit_first(rows, others))
        lexicon = trainer.learn_lexicon(rows, others)
        for i in held:
            r = rows[i]
            base = scorer.log_odds(r.x)
            words = bp.candidate_words(r.lines, r.cand, lexicon)
            stacked[i] = np.hstack(
                (
                    r.x,
                    bp.context_features(r.lines, r.verdicts, r.cand, base),
                    bp.lexical_features(words),
                    bp.document_features(words, r.verdicts, r.cand),
                    bp.block_features(r.verdicts, r.cand, base),
                    cue_features(r.lines, r.cand),
                )
            )
    context = trainer.train(
        np.concatenate([stacked[i] for i in ids]),
        np.concatenate([rows[i].y for i in ids]),
        np.concatenate([rows[i].w for i in ids]),
        tuple(_expected_features()),
    )
    context["lexicon"] = trainer.learn_lexicon(rows, ids)
    return {**trainer.fit_first(rows, ids), "context": context}


bp.ContextEnsemble.expected_features = staticmethod(_expected_features)  # type: ignore[method-assign]
bp.BoilerplateStage._line_log_odds = _line_log_odds  # type: ignore[method-assign]
trainer.fit_stacked = _fit_stacked
