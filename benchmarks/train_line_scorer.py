"""Train the boilerplate stage's line scorer (``pipeline/data/boilerplate/line_scorer.json``).

    python benchmarks/line_scorer_silver.py /tmp/silver.jsonl      # trafilatura on the allowed HTML pages
    python benchmarks/train_line_scorer.py /tmp/silver.jsonl [--write]

Labels, per line the rules leave to the scorer (``scorer_candidates``, with the margin rule off as
when the scorer is on) in documents with an article stretch: **silver** = the line is content when
trafilatura (which sees the HTML) kept it; **gold** (dev
pages only) = a line containing a ``with`` snippet is content, one containing only ``without`` snippets
is not; gold overrides silver and weighs ``GOLD_WEIGHT``. Pages used: dev-gold pages and the pages
without gold, never pages whose gold is held back (acceptance set).

Second pass (default; ``--no-context`` leaves it out): a context model on SCORER_FEATURES +
CONTEXT_FEATURES + LEXICAL_FEATURES + DOCUMENT_FEATURES + BLOCK_FEATURES, trained on the first model's
*out-of-fold* scores (``CONTEXT_FOLDS`` folds of the training pages) and out-of-fold lexicons, then shipped with the
first model and the lexicon of all training pages as ``"context"``.

Cross-validation: a model trained on half A's dev pages (+ the pages without gold) is scored on half
B with the bench's snippet metric, and the other way round; those are the figures to report. With
``--write`` a model trained on every allowed page is written for the stage to ship. Deterministic
(no randomness): gradient-boosted trees of depth ``DEPTH`` on quantile bins, numpy only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_boilerplate import evaluate, half, load, make_doc  # noqa: E402
from benchmarks.snippet_metric import fold  # noqa: E402
from pipeline.stages.boilerplate import (  # noqa: E402
    BLOCK_FEATURES,
    CONTEXT_FEATURES,
    DOCUMENT_FEATURES,
    LEXICAL_FEATURES,
    PACK_DIR,
    SCORER_FEATURES,
    BoilerplateStage,
    RuleVerdicts,
    TreeEnsemble,
    block_features,
    candidate_words,
    context_features,
    document_features,
    lexical_features,
    line_features,
    line_words,
    scorer_candidates,
)

TREES = 200
DEPTH = 3
LEARNING_RATE = 0.1
L2 = 1.0
BINS = 32
MIN_HESSIAN = 2.0
GOLD_WEIGHT = 100.0
# A line shorter than this counts as kept by trafilatura only when it is a whole line of its output
# (a short string is found inside longer text by chance).
SILVER_SUBSTRING_MIN_CHARS = 25
# The context model (second pass) learns from first-model scores of pages that model did not see:
# the training pages are split in this many folds, each scored by a model trained on the others.
CONTEXT_FOLDS = 5
# Lexicon of the context model: words seen on at least this many training pages, add-one smoothing.
LEXICON_MIN_PAGES = 3
LEXICON_SMOOTHING = 1.0


def silver_label(line: str, extracted: str, extracted_lines: set[str]) -> int:
    folded = fold(line)
    if folded in extracted_lines:
        return 1
    return int(len(folded) >= SILVER_SUBSTRING_MIN_CHARS and folded in extracted)


def gold_label(line: str, gold: dict | None) -> int | None:
    if gold is None:
        return None
    folded = fold(line)
    if any(s and s in folded for s in map(fold, gold["with"])):
        return 1
    if any(s and s in folded for s in map(fold, gold["without"])):
        return 0
    return None


class PageRows(NamedTuple):
    x: np.ndarray  # SCORER_FEATURES per candidate line
    y: np.ndarray  # label: 1 content, 0 boilerplate
    w: np.ndarray  # weight (GOLD_WEIGHT for gold labels)
    lines: list[str]
    verdicts: RuleVerdicts
    cand: list[int]
    votes: np.ndarray | None = None  # per line, each voting extractor keeps it (1) or not (0)
    gold: np.ndarray | None = None  # per line, the gold label or -1


class Vote(NamedTuple):
    """Labels by a vote of several HTML extractors (``line_scorer_silver.py --extractors``): a line is
    content when the weighted share of extractors keeping it reaches ``min_share``; ``soft`` uses the
    share itself as the label (logistic loss takes labels in [0, 1])."""

    weights: dict[str, float]
    min_share: float = 0.5
    soft: bool = False
    calibrate: bool = False


def parse_vote(spec: str, min_share: float, soft: bool, calibrate: bool = False) -> Vote:
    """``name[=weight],...`` -> Vote (weight 1 when not given)."""
    weights = {}
    for part in spec.split(","):
        name, _, weight = part.partition("=")
        weights[name.strip()] = float(weight or 1)
    return Vote(weights, min_share, soft, calibrate)


# Calibrated votes: a vote pattern needs this many gold lines in the training pages to get its own
# label; rarer patterns keep the first extractor's vote.
CALIBRATION_MIN_GOLD = 5


def vote_patterns(votes: np.ndarray) -> np.ndarray:
    """Pattern of each line's votes: whether the first extractor keeps it, and how many others do."""
    others = votes.shape[1] - 1
    return (votes[:, 0] * (others + 1) + votes[:, 1:].sum(axis=1)).astype(np.intp)


def calibration_table(rows: dict[str, PageRows], ids: list[str]) -> np.ndarray:
    """P(content | vote pattern), measured on the gold lines of the given pages. Lines no extractor
    keeps stay 0 (gold content there is what every extractor misses: no vote can tell it)."""
    n = rows[ids[0]].votes.shape[1]
    patterns = np.concatenate([vote_patterns(rows[i].votes) for i in ids])
    gold = np.concatenate([rows[i].gold for i in ids])
    table = np.zeros(2 * n)
    for p in range(2 * n):
        known = (patterns == p) & (gold >= 0)
        table[p] = gold[known].mean() if known.sum() >= CALIBRATION_MIN_GOLD else float(p >= n)
    table[0] = 0.0
    return table


def calibrated(rows: dict[str, PageRows], ids: list[str]) -> dict[str, PageRows]:
    """The given pages with soft silver labels = the calibration table of their own gold lines (the
    extractors' votes weighed by how often gold agrees with each pattern); gold lines keep gold."""
    table = calibration_table(rows, ids)
    print("calibration:", table.round(3).tolist(), file=sys.stderr)
    out = {}
    for i in ids:
        r = rows[i]
        out[i] = r._replace(y=np.where(r.gold >= 0, r.gold, table[vote_patterns(r.votes)]))
    return out


def silver_value(line: str, texts: dict[str, tuple[str, set[str]]], vote: Vote | None) -> float:
    """Silver label of a line: trafilatura's (``texts["extracted"]``) or the extractors' vote."""
    if vote is None:
        return float(silver_label(line, *texts["extracted"]))
    total = sum(vote.weights.values())
    share = sum(w * silver_label(line, *texts[name]) for name, w in vote.weights.items()) / total
    return share if vote.soft else float(share >= vote.min_share)


def page_rows(
    stage: BoilerplateStage, doc: dict, extracted: str | dict[str, str], gold: dict | None, vote: Vote | None = None
) -> PageRows | None:
    """Features, labels and weights of one page's candidate lines (None without an article stretch).
    ``extracted`` is trafilatura's text, or a dict of extractor texts (``"extracted"`` among them)."""
    lines = doc["text"].split("\n")
    v = stage.rule_verdicts(make_doc(doc), lines, scorer=True)
    if v.stretch is None:
        return None
    cand = scorer_candidates(lines, v)
    if not cand:
        return None
    x = line_features(lines, v, cand)
    raw = extracted if isinstance(extracted, dict) else {"extracted": extracted}
    texts = {name: (fold(t), {fold(line) for line in t.split("\n")}) for name, t in raw.items()}
    y = np.empty(len(cand))
    w = np.empty(len(cand))
    labels = np.empty(len(cand))
    for k, i in enumerate(cand):
        g = gold_label(lines[i], gold)
        labels[k] = -1 if g is None else g
        if g is None:
            y[k], w[k] = silver_value(lines[i], texts, vote), 1.0
        else:
            y[k], w[k] = g, GOLD_WEIGHT
    if vote is None or not vote.calibrate:
        return PageRows(x, y, w, lines, v, cand)
    votes = np.array([[silver_label(lines[i], *texts[name]) for name in vote.weights] for i in cand], dtype=float)
    return PageRows(x, y, w, lines, v, cand, votes.reshape(len(cand), len(vote.weights)), labels)


def train(x: np.ndarray, y: np.ndarray, w: np.ndarray, names: tuple[str, ...] = SCORER_FEATURES) -> dict:
    """Gradient-boosted trees (logistic loss, second-order leaves), complete trees of depth DEPTH."""
    n, f = x.shape
    edges = [np.unique(np.quantile(x[:, j], np.linspace(0, 1, BINS + 1)[1:-1])) for j in range(f)]
    nb = BINS
    binned = np.stack([np.searchsorted(edges[j], x[:, j], side="left") for j in range(f)], axis=1)
    flat = binned + np.arange(f) * nb
    mean = float(np.average(y, weights=w))
    base = float(np.log(mean / (1 - mean)))
    score = np.full(n, base)
    inner = 2**DEPTH - 1
    feats = np.zeros((TREES, inner), dtype=np.intp)
    thresholds = np.full((TREES, inner), np.inf)
    leaves = np.zeros((TREES, 2**DEPTH))
    for t in range(TREES):
        p = 1 / (1 + np.exp(-score))
        g = (p - y) * w
        h = np.maximum(p * (1 - p), 1e-6) * w
        node = np.zeros(n, dtype=np.intp)
        for j in range(inner):
            idx = np.flatnonzero(node == j)
            if len(idx) == 0:
                continue
            gs = np.bincount(flat[idx].ravel(), weights=np.repeat(g[idx], f), minlength=f * nb).reshape(f, nb)
            hs = np.bincount(flat[idx].ravel(), weights=np.repeat(h[idx], f), minlength=f * nb).reshape(f, nb)
            gl, hl = np.cumsum(gs, axis=1), np.cumsum(hs, axis=1)
            gt, ht = gl[:, -1:], hl[:, -1:]
            gr, hr = gt - gl, ht - hl
            gain = gl**2 / (hl + L2) + gr**2 / (hr + L2) - gt**2 / (ht + L2)
            gain[(hl < MIN_HESSIAN) | (hr < MIN_HESSIAN)] = -np.inf
            for jj in range(f):  # a split needs a real edge
                gain[jj, len(edges[jj]) :] = -np.inf
            best = int(np.argmax(gain))
            bf, bb = divmod(best, nb)
            if np.isfinite(gain[bf, bb]) and gain[bf, bb] > 0:
                feats[t, j], thresholds[t, j] = bf, edges[bf][bb]
            go_right = x[idx, feats[t, j]] > thresholds[t, j]
            node[idx] = 2 * j + 1 + go_right
        leaf = node - inner
        gsum = np.bincount(leaf, weights=g, minlength=2**DEPTH)
        hsum = np.bincount(leaf, weights=h, minlength=2**DEPTH)
        leaves[t] = -LEARNING_RATE * gsum / (hsum + L2)
        score += leaves[t][leaf]
    return {
        "features": list(names),
        "depth": DEPTH,
        "base": base,
        "feature": feats.tolist(),
        # inf (no split) is stored as a large number: JSON has no infinity.
        "threshold": np.where(np.isfinite(thresholds), thresholds, 1e300).tolist(),
        "leaf": leaves.tolist(),
    }


def fit_first(rows: dict[str, PageRows], ids: list[str]) -> dict:
    """The first model: SCORER_FEATURES of every candidate line of the given pages."""
    return train(*(np.concatenate([getattr(rows[i], k) for i in ids]) for k in "xyw"))


# Byte of the page id's sha1 that draws the context folds (``--fold-byte``: another draw of the split).
FOLD_BYTE = 1


def context_fold(page_id: str) -> int:
    return hashlib.sha1(page_id.encode()).digest()[FOLD_BYTE] % CONTEXT_FOLDS


def learn_lexicon(rows: dict[str, PageRows], ids: list[str]) -> dict[str, float]:
    """Word -> smoothed log-odds that a line containing it is content, minus the prior log-odds, over
    the candidate lines of the given pages; only words found on LEXICON_MIN_PAGES pages or more (a word
    of one site says nothing about others)."""
    content: Counter[str] = Counter()
    chrome: Counter[str] = Counter()
    pages: Counter[str] = Counter()
    for i in ids:
        r = rows[i]
        seen: set[str] = set()
        for k, label in zip(r.cand, r.y.tolist(), strict=True):
            words = line_words(r.lines[k].strip())
            (content if label >= 0.5 else chrome).update(words)  # soft labels: the side they lean to
            seen.update(words)
        pages.update(seen)
    n1 = sum(int((r.y >= 0.5).sum()) for r in map(rows.get, ids))
    n0 = sum(len(r.y) for r in map(rows.get, ids)) - n1
    prior = math.log(n1 / n0)
    return {
        word: round(math.log((content[word] + LEXICON_SMOOTHING) / (chrome[word] + LEXICON_SMOOTHING)) - prior, 3)
        for word, count in sorted(pages.items())  # sorted: the file must not depend on set order
        if count >= LEXICON_MIN_PAGES
    }


def fit_stacked(rows: dict[str, PageRows], ids: list[str]) -> dict:
    """The first model on every page, plus the context model (``"context"``) trained on the first
    model's out-of-fold scores: each page's lines are scored by a first model trained without that
    page's fold, as unseen pages will be, so the context model learns how far to trust them."""
    stacked: dict[str, np.ndarray] = {}
    for part in range(CONTEXT_FOLDS):
        held = [i for i in ids if context_fold(i) == part]
        others = [i for i in ids if context_fold(i) != part]
        scorer = TreeEnsemble(fit_first(rows, others))
        lexicon = learn_lexicon(rows, others)
        for i in held:
            r = rows[i]
            base = scorer.log_odds(r.x)
            context = context_features(r.lines, r.verdicts, r.cand, base)
            words = candidate_words(r.lines, r.cand, lexicon)
            lexical = lexical_features(words)
            document = document_features(words, r.verdicts, r.cand)
            blocks = block_features(r.verdicts, r.cand, base)
            stacked[i] = np.hstack((r.x, context, lexical, document, blocks))
    context = train(
        np.concatenate([stacked[i] for i in ids]),
        np.concatenate([rows[i].y for i in ids]),
        np.concatenate([rows[i].w for i in ids]),
        (*SCORER_FEATURES, *CONTEXT_FEATURES, *LEXICAL_FEATURES, *DOCUMENT_FEATURES, *BLOCK_FEATURES),
    )
    context["lexicon"] = learn_lexicon(rows, ids)
    return {**fit_first(rows, ids), "context": context}


def main() -> None:
    global FOLD_BYTE  # --fold-byte
    parser = argparse.ArgumentParser()
    parser.add_argument("silver", type=Path)
    parser.add_argument("--write", action="store_true", help="train on every allowed page and ship the model")
    parser.add_argument("--thresholds", default="0.065,0.08,0.115", help="line_scorer_threshold values to score")
    parser.add_argument(
        "--no-context", dest="context", action="store_false", help="first model only (no context model)"
    )
    parser.add_argument(
        "--votes",
        help="silver labels by a vote of extractors (``name[=weight],...``, names of the silver file's"
        ' "votes"); default: trafilatura\'s precision-mode text alone',
    )
    parser.add_argument("--vote-min", type=float, default=0.5, help="weighted share of votes that makes content")
    parser.add_argument("--soft", action="store_true", help="the vote share itself is the label")
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="soft label = share of gold content among the training pages' gold lines with the same vote"
        " pattern (whether the first --votes extractor keeps the line, how many others do)",
    )
    parser.add_argument(
        "--save-models", type=Path, help="also write the two cross-validation models (halves A, B) to this JSON file"
    )
    parser.add_argument(
        "--load-models",
        type=Path,
        help="score the cross-validation models of an earlier --save-models instead of training them (e.g. models"
        " trained with older pattern packs, scored with the current ones)",
    )
    parser.add_argument("--fold-byte", type=int, default=FOLD_BYTE, help="sha1 byte that draws the context folds")
    parser.add_argument(
        "--cues", action="store_true", help="append the prototype cue columns (benchmarks/line_scorer_cues.py)"
    )
    args = parser.parse_args()
    if args.cues and args.write:
        parser.error("--cues is a prototype for cross-validation: the stage cannot load such a model")
    FOLD_BYTE = args.fold_byte
    stacked = fit_stacked
    if args.cues:  # patches the stage in this process; its fit_stacked uses the imported trainer module
        from benchmarks import line_scorer_cues

        line_scorer_cues.trainer.FOLD_BYTE = args.fold_byte
        stacked = line_scorer_cues.trainer.fit_stacked
    vote = parse_vote(args.votes, args.vote_min, args.soft, args.calibrate) if args.votes else None
    docs, gold = load()
    with open(args.silver, encoding="utf-8") as f:
        silver = {r["id"]: {"extracted": r["extracted"], **r.get("votes", {})} for r in map(json.loads, f)}
    by_id = {d["id"]: d for d in docs}
    allowed = [i for i in silver if i in gold or not by_id[i]["has_gold"]]
    assert all(by_id[i]["id"] in gold or not by_id[i]["has_gold"] for i in allowed)

    base_stage = BoilerplateStage(BoilerplateStage.Options(line_scorer_threshold=0))
    base_stage.prepare(make_doc(d) for d in docs)
    rows = {}
    for i in allowed:
        r = page_rows(base_stage, by_id[i], silver[i], gold.get(i), vote)
        if r is not None:
            rows[i] = r
    print(f"{len(rows)} pages with an article stretch, {sum(len(r.y) for r in rows.values())} lines")

    def fit(ids: list[str]) -> dict:
        labelled = calibrated(rows, ids) if vote is not None and vote.calibrate else rows
        return stacked(labelled, ids) if args.context else fit_first(labelled, ids)

    thresholds = [float(t) for t in args.thresholds.split(",")]
    print("| trained on | scored on | threshold | TP | FN | FP | TN | precision | recall | F1 |")
    print("|---" * 10 + "|")
    loaded = json.loads(args.load_models.read_text(encoding="utf-8")) if args.load_models else None
    saved = {}
    for train_half, test_half in (("A", "B"), ("B", "A")):
        ids = [i for i in rows if (i in gold and half(i) == train_half) or i not in gold]
        model = saved[train_half] = loaded[train_half] if loaded else fit(ids)
        test_docs = [d for d in docs if d["id"] in gold and half(d["id"]) == test_half]
        for threshold in thresholds:
            stage = BoilerplateStage(BoilerplateStage.Options(line_scorer_threshold=threshold), scorer_model=model)
            stage.recurring, stage.recurring_by_site = base_stage.recurring, base_stage.recurring_by_site
            score = evaluate(stage, test_docs, gold)[test_half]
            print(f"| {train_half} + no-gold | {test_half} | {threshold} | {score.row()} |", flush=True)
    if args.save_models:
        args.save_models.write_text(json.dumps(saved, separators=(",", ":")), encoding="utf-8")
    if args.write:
        model = fit(list(rows))
        out = REPO / "pipeline" / Path(*PACK_DIR) / "line_scorer.json"
        out.write_text(json.dumps(model, separators=(",", ":")) + "\n", encoding="utf-8")
        print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
