"""boilerplate's rule loop in Python, step by step: the definition its compiled loop (``kernels.rule_loop``, run
by ``BoilerplateStage._rule_verdicts``) is tested against (tests/test_boilerplate.py). Moved out of the stage in
session 18: the stage runs only the compiled loop."""

from __future__ import annotations

import bisect

from pipeline.document import Document
from pipeline.stages.boilerplate import (
    _LIST_ITEM_RE,
    CONTENT_RULE,
    RECURRING_RULE,
    SEEN_PROSE_MIN_WORDS,
    BoilerplateStage,
    RuleVerdicts,
    _listed_teaser,
)


def rule_verdicts_python(
    stage: BoilerplateStage, doc: Document, lines: list[str], scorer: bool | None, copy: bool
) -> tuple[RuleVerdicts, int, int]:
    """_rule_verdicts in Python, step by step (the definition the compiled loop is tested against)."""
    opts = stage.options
    disabled = stage._disabled
    n = len(lines)
    if scorer is None:
        scorer = stage._scorer is not None
    # None: keep; str: rule that removed the line.
    verdict: list[str | None] = [None] * n
    new_text: dict[int, str] = {}
    prefixes: dict[int, str] = {}
    nav: list[bool] = [False] * n
    nav_lines: list[int] = []
    trailing = seen_prose = False
    trailing_on = opts.remove_trailing_blocks and "widget-list" not in disabled
    trailing_max = opts.trailing_max_words
    crumbs_on = "breadcrumb" not in disabled
    prefix_on = "breadcrumb-prefix" not in disabled
    end_markers = stage._end_markers

    recurring_on = RECURRING_RULE not in disabled
    recurring = stage.recurring
    site_recurring = stage.recurring_by_site.get(stage.site_of(doc), frozenset()) if recurring_on else frozenset()
    # An extractor (the extract stage) already kept only the main content: looking for the
    # article again inside its output can only lose content.
    content_on = CONTENT_RULE not in disabled and not doc.meta.get("extracted")
    # Per line: characters of body text (> 0), or a non-body line (-1); 0 for blank lines.
    body: list[int] = [0] * n
    outside_keep: list[bool] = [False] * n
    # Lines with body[i] != 0, in order (the article search only looks at these).
    scored: list[int] = []
    # Per scored line: cost of the lines removed by other rules since the previous scored line
    # (a block of chrome, a comment or widget heading, separates the article from what follows).
    gap: list[int] = [0] * n
    pending = 0
    removed_cost = opts.content_removed_penalty
    marker_cost = opts.content_marker_penalty
    markers: list[int] = []
    infos = stage.line_infos(lines)
    body_lines = recurring_body = 0

    # The text of a line is looked at only in the rare branches that need it (markers, cut
    # breadcrumbs, listed teasers); the rest comes from its _line_info.
    for i, info in enumerate(infos):
        if info is None:
            continue
        key_hash, words, rule, crumb, prose, nav_item, body_chars, keep = info
        if key_hash is None:
            continue
        if rule is not None:
            verdict[i] = rule
            pending += removed_cost
            # A marker ends an article only once some prose was seen, and a list item is a link
            # in a menu rather than a heading.
            if rule in end_markers and seen_prose and not _LIST_ITEM_RE.match(lines[i].strip()):
                trailing = trailing_on
                pending += marker_cost
                markers.append(i)
            continue
        if body_chars > 0:
            body_lines += 1
        if recurring_on and (key_hash in recurring or key_hash in site_recurring):
            if body_chars > 0:
                recurring_body += 1
            if not copy or body_chars <= 0:
                verdict[i] = RECURRING_RULE
                pending += removed_cost
                continue
        if crumb is not None:
            kind, cut = crumb
            if kind == "breadcrumb" and crumbs_on:
                verdict[i] = kind
                pending += removed_cost
                continue
            if kind == "breadcrumb-prefix" and prefix_on:
                line = lines[i]
                start = len(line) - len(line.lstrip())
                prefixes[i] = line[: start + cut]
                new_text[i] = line[start + cut :]
                trailing = False
                continue
        if trailing:
            # A listed headline ending in "?" or "!" is one more teaser, not the article resuming.
            if words <= trailing_max and (not prose or _listed_teaser(lines[i].strip())):
                verdict[i] = "widget-list"
                pending += removed_cost
                continue
            trailing = False
        if prose and words >= SEEN_PROSE_MIN_WORDS:
            seen_prose = True
        if nav_item:
            nav[i] = True
            nav_lines.append(i)
        if content_on:
            body[i] = body_chars
            outside_keep[i] = keep
            scored.append(i)
            gap[i] = pending
            pending = 0

    if nav_lines and "navigation" not in disabled:
        mark_navigation(stage, lines, verdict, nav, nav_lines)
    # With the line scorer on, it judges the lines around the stretch instead of the margin rule.
    stretch = (
        mark_outside_content(stage, verdict, body, outside_keep, scored, gap, mark=not scorer) if content_on else None
    )
    verdicts = RuleVerdicts(verdict, prefixes, new_text, infos, stretch, markers, scored if content_on else None)
    return verdicts, recurring_body, body_lines


def mark_outside_content(
    stage: BoilerplateStage,
    verdict: list[str | None],
    body: list[int],
    keep: list[bool],
    scored: list[int],
    gap: list[int],
    mark: bool = True,
) -> tuple[int, int] | None:
    """Find the article as the stretch of lines with the most body text (maximum-sum segment: body
    lines add their length, other kept lines cost ``content_line_penalty``, and ``gap[i]`` is the cost
    of what other rules removed just before line i: ``content_removed_penalty`` per removed line and
    ``content_marker_penalty`` per comment/widget heading, so a block of chrome or a "Related posts"
    heading separates the article from footer prose) and mark the short lines beyond a margin around
    it as 'outside-content' (menus, teasers, sidebars, footers).

    ``scored`` lists, in order, the lines with a body score (the others are blank or removed).
    Nothing happens in a document without a stretch of at least two body lines: a list, a product
    page or a very short text has no article to measure against. Returns the stretch as (first
    line, line after the last), or None; with ``mark`` False only finds it (the line scorer judges
    the lines around it).
    """
    penalty = stage.options.content_line_penalty
    best = cur = 0
    best_start = best_end = cur_start = 0
    cur_body = best_body = 0
    removed_penalty = stage.options.content_removed_penalty
    live: list[int] = []
    skipped = 0
    for i in scored:
        if verdict[i] is not None:  # navigation removed it since
            skipped += 1
            continue
        live.append(i)
        value = body[i]
        if gap[i] or skipped:
            cur -= gap[i] + removed_penalty * skipped
        skipped = 0
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
        return None
    if not mark:
        return best_start, best_end
    margin = stage.options.content_margin
    # Walk outwards from the stretch, counting kept non-blank lines.
    split_before = bisect.bisect_left(live, best_start)
    split_after = bisect.bisect_left(live, best_end)
    for side in (reversed(live[:split_before]), live[split_after:]):
        for seen, i in enumerate(side, 1):
            if seen > margin and not keep[i]:
                verdict[i] = CONTENT_RULE
    return best_start, best_end


def mark_navigation(
    stage: BoilerplateStage, lines: list[str], verdict: list[str | None], nav: list[bool], nav_lines: list[int]
) -> None:
    """Mark runs of navigation items as 'navigation'.

    A run is a stretch of consecutive navigation items; lines already removed by a pack rule
    ("Home", "Impressum", "Login") neither count nor break it, but they show the run is a menu. A
    run needs ``nav_min_run`` items and such a menu line inside or right next to it; without one it
    needs twice as many items (a bullet list inside an article is rarely that long). ``nav_lines``
    lists the navigation items in order (runs can only start there).
    """
    min_run = stage.options.nav_min_run
    n = len(lines)
    i = 0
    for start in nav_lines:
        if start < i:
            continue
        i = start
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
