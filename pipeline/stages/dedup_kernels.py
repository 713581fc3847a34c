"""Compiled (numba) loops of the dedup index: open-addressing hash tables of uint64 keys and the
per-document pass over a document's units (exact look-ups, LSH candidates, verification, inserts).

They replace Python work per unit and per key: one call per document instead of several per unit.
The stage's options, decisions and counters stay in ``dedup.py``; these only compute.
"""

from __future__ import annotations

import numpy as np

from pipeline.stages import text_kernels  # noqa: F401  (keeps scipy.linalg out of numba's start-up)
from pipeline.stages.aot_kernels import numba  # (numba's njit, or the compiled kernels')

NO_VALUE = np.uint32(0xFFFFFFFF)  # marks an empty slot: values stay below it
RULE_KEPT, RULE_EXACT, RULE_NEAR = 0, 1, 2


# ---------------------------------------------------------------- hash tables
# Linear probing; the keys are 64-bit hashes already, so their low bits pick the slot. A table is
# two arrays (keys, values) whose size is a power of two, kept at most 70% full by its owner.


@numba.njit(cache=True, nogil=True)
def ht_slot(slot_keys: np.ndarray, slot_values: np.ndarray, key: np.uint64) -> np.int64:
    """The key's slot, or the empty slot where it would go (its value is then NO_VALUE)."""
    mask = slot_keys.size - 1
    j = np.int64(key & np.uint64(mask))
    while slot_values[j] != NO_VALUE and slot_keys[j] != key:
        j = (j + 1) & mask
    return j


@numba.njit(cache=True, nogil=True)
def ht_get(slot_keys: np.ndarray, slot_values: np.ndarray, key: np.uint64) -> np.int64:
    j = ht_slot(slot_keys, slot_values, key)
    return np.int64(-1) if slot_values[j] == NO_VALUE else np.int64(slot_values[j])


@numba.njit(cache=True, nogil=True)
def ht_put(slot_keys: np.ndarray, slot_values: np.ndarray, key: np.uint64, value: np.uint32) -> bool:
    # A key already present keeps its (earlier) value; True if the key was added.
    j = ht_slot(slot_keys, slot_values, key)
    if slot_values[j] != NO_VALUE:
        return False
    slot_keys[j] = key
    slot_values[j] = value
    return True


@numba.njit(cache=True, nogil=True)
def ht_insert(slot_keys: np.ndarray, slot_values: np.ndarray, keys: np.ndarray, values: np.ndarray) -> int:
    """Insert in order (first value wins); returns the number of keys added."""
    added = 0
    for i in range(keys.size):
        added += ht_put(slot_keys, slot_values, keys[i], np.uint32(values[i]))
    return added


@numba.njit(cache=True, nogil=True)
def ht_grow_in_place(slot_keys: np.ndarray, slot_values: np.ndarray, old_size: int) -> None:
    """Rehash a table whose arrays were enlarged (in place) from ``old_size`` slots, the new slots
    empty: no second table, so growing needs only the new slots. Each entry of the old part is taken
    out and put back under the new mask, scanning from just after an empty slot so that no old probe
    chain is cut before its entries are moved: an entry whose home stays in the old part lands at or
    before its old slot, behind the scan, and the chains it crosses hold moved entries only; an entry
    whose home moves up lands among moved entries (or, wrapping past the end, ahead of the scan,
    where it is moved again). An entry already at its new home stays (no chain leads through it to
    its own slot). The keys are distinct: an entry goes to the first empty slot from its home, with
    no key compared on the way (half the time of ``ht_put``'s probe)."""
    old_mask = old_size - 1
    mask = slot_keys.size - 1
    empty = 0
    while slot_values[empty] != NO_VALUE:
        empty += 1
    for step in range(1, old_size + 1):
        j = (empty + step) & old_mask
        value = slot_values[j]
        if value == NO_VALUE:
            continue
        key = slot_keys[j]
        k = np.int64(key & np.uint64(mask))
        if k == j:
            continue
        slot_values[j] = NO_VALUE
        while slot_values[k] != NO_VALUE:
            k = (k + 1) & mask
        slot_keys[k] = key
        slot_values[k] = value


@numba.njit(cache=True, nogil=True)
def ht_rehash_into(
    old_keys: np.ndarray, old_values: np.ndarray, slot_keys: np.ndarray, slot_values: np.ndarray
) -> None:
    """Put the entries of a table into a larger, empty one (its values all NO_VALUE). The keys are
    distinct: each goes to the first empty slot from its home, no key compared on the way."""
    mask = slot_keys.size - 1
    for j in range(old_keys.size):
        value = old_values[j]
        if value == NO_VALUE:
            continue
        key = old_keys[j]
        k = np.int64(key & np.uint64(mask))
        while slot_values[k] != NO_VALUE:
            k = (k + 1) & mask
        slot_keys[k] = key
        slot_values[k] = value


@numba.njit(cache=True, nogil=True)
def ht_delete(slot_keys: np.ndarray, slot_values: np.ndarray, keys: np.ndarray) -> int:
    """Remove keys (backward-shift deletion: no tombstones, probe chains stay whole); returns how
    many were present."""
    mask = slot_keys.size - 1
    removed = 0
    for n in range(keys.size):
        i = ht_slot(slot_keys, slot_values, keys[n])
        if slot_values[i] == NO_VALUE:
            continue
        removed += 1
        while True:  # close the gap at i with a later entry of the chain that may move there
            slot_values[i] = NO_VALUE
            k = i
            while True:
                k = (k + 1) & mask
                if slot_values[k] == NO_VALUE:
                    break
                home = np.int64(slot_keys[k] & np.uint64(mask))
                stays = (i < home <= k) if i <= k else (home > i or home <= k)
                if not stays:
                    break
            if slot_values[k] == NO_VALUE:
                break
            slot_keys[i] = slot_keys[k]
            slot_values[i] = slot_values[k]
            i = k
    return removed


@numba.njit(cache=True, nogil=True)
def ht_find(slot_keys: np.ndarray, slot_values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The value of each key, -1 where there is none."""
    out = np.empty(keys.size, np.int64)
    for i in range(keys.size):
        out[i] = ht_get(slot_keys, slot_values, keys[i])
    return out


@numba.njit(cache=True, nogil=True)
def ht_insert_mask(slot_keys: np.ndarray, slot_values: np.ndarray, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``ht_insert``, True where a key was added."""
    added = np.zeros(keys.size, np.bool_)
    for i in range(keys.size):
        added[i] = ht_put(slot_keys, slot_values, keys[i], np.uint32(values[i]))
    return added


@numba.njit(cache=True, nogil=True)
def ht_insert_value(slot_keys: np.ndarray, slot_values: np.ndarray, keys: np.ndarray, value: int) -> np.ndarray:
    """``ht_insert`` with one value for all the keys; returns the keys added."""
    added = np.empty(keys.size, np.uint64)
    n = 0
    for i in range(keys.size):
        if ht_put(slot_keys, slot_values, keys[i], np.uint32(value)):
            added[n] = keys[i]
            n += 1
    return added[:n]


@numba.njit(cache=True, nogil=True)
def ht_increment(slot_keys: np.ndarray, slot_values: np.ndarray, keys: np.ndarray) -> int:
    """Add one to the value of each key (an absent key gets 1; a key listed twice, 2); returns the
    number of keys added. The caller reserved room for them."""
    added = 0
    for i in range(keys.size):
        key = keys[i]
        j = ht_slot(slot_keys, slot_values, key)
        if slot_values[j] == NO_VALUE:
            slot_keys[j] = key
            slot_values[j] = 1
            added += 1
        else:
            slot_values[j] += 1
    return added


@numba.njit(cache=True, nogil=True)
def ht_decrement(slot_keys: np.ndarray, slot_values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Take one from the value of each key (each present); returns the keys that reached 0, for
    the caller to delete (``ht_delete``)."""
    zero = np.empty(keys.size, np.uint64)
    n = 0
    for i in range(keys.size):
        key = keys[i]
        j = ht_slot(slot_keys, slot_values, key)
        slot_values[j] -= 1
        if slot_values[j] == 0:
            zero[n] = key
            n += 1
    return zero[:n]


# ---------------------------------------------------------------- one document's units


@numba.njit(cache=True, nogil=True)
def _intersection(a: np.ndarray, b: np.ndarray) -> int:
    # Both sorted and unique.
    i = j = inter = 0
    while i < a.size and j < b.size:
        if a[i] < b[j]:
            i += 1
        elif a[i] > b[j]:
            j += 1
        else:
            inter += 1
            i += 1
            j += 1
    return inter


@numba.njit(cache=True, nogil=True)
def first_copies(keys: np.ndarray) -> np.ndarray:
    """Per key, the position of its first occurrence in ``keys``."""
    size = 16
    while size < 2 * keys.size:
        size *= 2
    slot_keys = np.zeros(size, np.uint64)
    slot_values = np.full(size, NO_VALUE, np.uint32)
    first = np.empty(keys.size, np.int64)
    for i in range(keys.size):
        ht_put(slot_keys, slot_values, keys[i], np.uint32(i))
        first[i] = ht_get(slot_keys, slot_values, keys[i])
    return first


@numba.njit(cache=True, nogil=True)
def touch_slots(slot_keys: np.ndarray, slot_values: np.ndarray, keys: np.ndarray) -> np.uint64:
    """Read the home slot of each key (a combination of what was read: for the caller to keep)."""
    mask = np.uint64(slot_keys.size - 1)
    acc = np.uint64(0)
    for i in range(keys.size):
        j = keys[i] & mask
        acc ^= slot_keys[j] + np.uint64(slot_values[j])
    return acc


@numba.njit(cache=True, nogil=True)
def short_runs(
    owner: np.ndarray,
    rule: np.ndarray,
    cluster: np.ndarray,
    short: np.ndarray,
    first: np.ndarray,
    words: np.ndarray,
    run_words: int,
    ordinal: int,
) -> None:
    """Keep the ``short`` candidates (short units an earlier document has, but for those found in
    many documents: ``dedup_units`` cleared their flag) that are not part of a copied run: a run is
    a stretch of consecutive candidates all removed as repeats of the same earlier document, and it
    counts as copied when its units hold at least ``run_words`` written words together. A short
    line one other document happens to share ("200 g Zucker" in two recipes) stands alone or with a
    few other short lines; a copied block is a stretch of them. A kept unit's later copies in this
    document are repeats of it (as a repeat of any unit here), or, if its first copy was removed,
    repeats of that earlier document."""
    n = owner.size
    i = 0
    while i < n:
        who = owner[i]
        if who < 0 or who == ordinal:
            i += 1
            continue
        end = i
        total = 0
        while end < n and owner[end] == who:
            total += words[end]
            end += 1
        if total < run_words:
            for j in range(i, end):
                if short[j]:
                    owner[j] = -2  # decided below
        i = end
    for j in range(n):
        if owner[j] != -2:
            continue
        f = first[j]
        if f == j:  # the first copy: kept (no key to add, an earlier document has it)
            owner[j], rule[j], cluster[j] = -1, RULE_KEPT, np.uint64(0)
        elif owner[f] >= 0:  # a later copy: the first copy's fate (f < j is decided)
            owner[j] = owner[f]
        else:
            owner[j] = ordinal


@numba.njit(cache=True, nogil=True)
def dedup_units(
    unit_keys: np.ndarray,
    candidates: np.ndarray,
    near_pos: np.ndarray,
    exact_tables: tuple,
    band: np.ndarray,
    bucket_tables: tuple,
    owners: np.ndarray,
    n_entries: int,
    exact_verify: bool,
    sets: np.ndarray,
    set_ends: np.ndarray,
    n_values: int,
    unit_sets: np.ndarray,
    unit_set_ends: np.ndarray,
    sigs: np.ndarray,
    unit_sigs: np.ndarray,
    threshold: float,
    ordinal: int,
    chars: np.ndarray,
    words: np.ndarray,
    short_words: int,
    run_words: int,
    count_tables: tuple,
    common_documents: int,
) -> tuple:
    """Decide, in input order, the fate of a document's candidate units (those with enough words).

    Per candidate i (the unit ``candidates[i]``): its exact key ``keys[i]`` (``unit_keys[candidates[i]]``: taken
    here, not by numpy's fancy indexing in Python, ~1.5 us a document) and ``near_pos[i]`` (its row in
    ``band``/``unit_sets``/``unit_sigs`` if it is matched as a near-duplicate, else -1). A unit is removed when
    an earlier document has its key; a later copy inside the document shares the first copy's fate; a near unit
    is removed when an LSH candidate (the earliest first) is at least ``threshold`` similar, by the exact
    Jaccard of the shingle sets or the signatures' estimate; otherwise it is indexed: its entry is appended to
    ``owners`` and ``sets``/``set_ends`` (or ``sigs``; the caller reserved room) and its band keys go into the
    bucket table (first entry wins). The keys of the kept first copies go into the exact-key table at the end.
    ``exact_tables``, ``bucket_tables``: the (keys, values) arrays of those tables (``KeyTable.tables()``).

    A short candidate (fewer than ``short_words`` written words, ``words[i]``, and not matched as a
    near-duplicate) whose key an earlier document has is removed only inside a copied run
    (``short_runs``), or when this is at least the ``common_documents``-th document holding it; else its
    first copy here is kept (its key stays the earlier document's) and later copies are repeats inside
    the document. ``count_tables``: the (keys, values) of the table counting, per such key, the
    documents after the first that held it; this document's are added (the caller reserved room) and
    returned last, for a roll-back and the saved state.

    Returns, end to end in an int64 array (``ints``): the removed candidates (positions), their owners and
    rules, the near rows indexed, (with ``exact_verify``) their set sizes; in a uint64 array: the new exact
    keys, the bucket keys created (for a roll-back and the saved state), the short keys counted, the removed
    candidates' clusters, the indexed rows' band keys (rows of ``band.shape[1]``); the removed candidates'
    similarities; the counts that cut those arrays (removed, new keys, bucket keys, short keys, rows; see
    ``DedupStage._dedup_units``); the new entry and set-value counts, and, of ``chars`` (each candidate's
    characters), the sums over the removed candidates and over those that repeat another document, with the
    count of the latter; last, the short keys new to their table: one call instead of a dozen small numpy
    steps after it.
    """
    ex_k, ex_v = exact_tables
    bk_k, bk_v = bucket_tables
    n = candidates.size
    keys = np.empty(n, np.uint64)
    for i in range(n):
        keys[i] = unit_keys[candidates[i]]
    first = first_copies(keys)
    bands = band.shape[1]
    # Load the home slots of every key this pass will look up (independent loads, many in flight)
    # before the look-ups, whose branches let the CPU wait for one cache miss at a time.
    warm = touch_slots(ex_k, ex_v, keys) ^ touch_slots(bk_k, bk_v, band.ravel())
    owner = np.full(n, -1, np.int64)
    rule = np.zeros(n, np.int8)
    cluster = np.zeros(n, np.uint64)
    sim = np.ones(n, np.float64)
    new_key = np.zeros(n, np.bool_)
    added_rows = np.empty(band.shape[0], np.int64)
    added_band = np.empty_like(band)  # their band keys and set sizes, for the saved state
    added_sizes = np.empty(band.shape[0] if exact_verify else 0, np.int64)
    n_added_rows = 0
    added_keys = np.empty(band.size, np.uint64)
    n_added_keys = 0
    cands = np.empty(bands, np.int64)
    found_band = np.zeros(bands, np.bool_)  # per band of the current unit: its bucket exists
    short = np.zeros(n, np.bool_)  # short units an earlier document has: decided after the others
    for i in range(n):
        key = keys[i]
        prior = ht_get(ex_k, ex_v, key)
        if prior >= 0:  # an earlier document has it
            owner[i], rule[i], cluster[i] = prior, RULE_EXACT, key
            short[i] = words[i] < short_words and near_pos[i] < 0  # (a formula, a URL: long all the same)
            continue
        f = first[i]
        if f != i:  # a repeat of a unit of this document: the first copy's fate
            if rule[f] == RULE_NEAR:
                owner[i], rule[i], cluster[i], sim[i] = owner[f], RULE_NEAR, cluster[f], sim[f]
            else:
                owner[i], rule[i], cluster[i] = ordinal, RULE_EXACT, key
            continue
        row = near_pos[i]
        if row < 0:
            new_key[i] = True
            continue
        # LSH candidates: the first entry of each band bucket, earliest first.
        nc = 0
        for b in range(bands):
            value = ht_get(bk_k, bk_v, band[row, b])
            found_band[b] = value >= 0
            if value >= 0:
                cands[nc] = value
                nc += 1
        found = np.sort(cands[:nc])
        hit = -1
        best = 0.0
        for c in range(nc):
            entry = found[c]
            if c and entry == found[c - 1]:
                continue
            if exact_verify:
                mine = unit_sets[unit_set_ends[row] : unit_set_ends[row + 1]]
                other = sets[set_ends[entry - 1] if entry else 0 : set_ends[entry]]
                inter = _intersection(mine, other)
                s = inter / (mine.size + other.size - inter)
            else:
                same = 0
                for p in range(sigs.shape[1]):
                    same += sigs[entry, p] == unit_sigs[row, p]
                s = same / sigs.shape[1]
            if s >= threshold:
                hit, best = entry, s
                break
        if hit >= 0:
            owner[i], rule[i], cluster[i], sim[i] = owners[hit], RULE_NEAR, hit, best
            continue
        # Index the unit as a new entry.
        entry = n_entries
        owners[entry] = ordinal
        if exact_verify:
            start, end = unit_set_ends[row], unit_set_ends[row + 1]
            sets[n_values : n_values + end - start] = unit_sets[start:end]
            n_values += end - start
            set_ends[entry] = n_values
        else:
            sigs[entry] = unit_sigs[row]
        n_entries += 1
        # Nothing was inserted since the look-ups above: a bucket found there exists, and ht_put
        # tells a key this unit repeats (two bands, one key). Looking the keys up again cost a
        # second pass over the table's cache lines.
        for b in range(bands):
            k = band[row, b]
            if not found_band[b] and ht_put(bk_k, bk_v, k, np.uint32(entry)):
                added_keys[n_added_keys] = k
                n_added_keys += 1
        added_rows[n_added_rows] = row
        added_band[n_added_rows] = band[row]
        if exact_verify:
            added_sizes[n_added_rows] = unit_set_ends[row + 1] - unit_set_ends[row]
        n_added_rows += 1
        new_key[i] = True
    # Short units found in many documents are boilerplate-like: removed wherever they stand. Each
    # document counts once per key (its first copy), whatever happens to the unit here.
    ct_k, ct_v = count_tables
    counted = np.empty(n, np.uint64)
    n_counted = 0
    for i in range(n):
        if short[i]:
            if max(ht_get(ct_k, ct_v, keys[i]), 0) + 2 >= common_documents:  # the first, the others, this one
                short[i] = False
            if first[i] == i:
                counted[n_counted] = keys[i]
                n_counted += 1
    new_counts = ht_increment(ct_k, ct_v, counted[:n_counted])
    short_runs(owner, rule, cluster, short, first, words, run_words, ordinal)
    new_keys = np.empty(n, np.uint64)
    gone = np.empty(n, np.int64)
    n_new = n_gone = copied = 0
    gone_chars = copied_chars = 0
    for i in range(n):
        if new_key[i]:
            ht_put(ex_k, ex_v, keys[i], np.uint32(ordinal))
            new_keys[n_new] = keys[i]
            n_new += 1
        elif owner[i] >= 0:  # removed (moved to the front of the arrays: n_gone <= i)
            gone[n_gone] = i
            owner[n_gone], rule[n_gone], cluster[n_gone], sim[n_gone] = owner[i], rule[i], cluster[i], sim[i]
            gone_chars += chars[i]
            if owner[i] != ordinal:  # only text of other documents makes this one a duplicate
                copied += 1
                copied_chars += chars[i]
            n_gone += 1
    if warm == np.uint64(1) and n_entries < 0:  # never true: keeps the loads of ``touch_slots``
        n_values = -1
    # Three arrays, not ten: numba boxes each returned array for ~0.3 us (a Python call apiece).
    n_sizes = n_added_rows if exact_verify else 0
    ints = np.empty(3 * n_gone + n_added_rows + n_sizes, np.int64)
    ints[:n_gone] = gone[:n_gone]
    ints[n_gone : 2 * n_gone] = owner[:n_gone]
    ints[2 * n_gone : 3 * n_gone] = rule[:n_gone]
    at = 3 * n_gone
    ints[at : at + n_added_rows] = added_rows[:n_added_rows]
    ints[at + n_added_rows :] = added_sizes[:n_sizes]
    words64 = np.empty(n_new + n_added_keys + n_counted + n_gone + n_added_rows * bands, np.uint64)
    words64[:n_new] = new_keys[:n_new]
    at = n_new
    words64[at : at + n_added_keys] = added_keys[:n_added_keys]
    at += n_added_keys
    words64[at : at + n_counted] = counted[:n_counted]
    at += n_counted
    words64[at : at + n_gone] = cluster[:n_gone]
    at += n_gone
    words64[at:] = added_band[:n_added_rows].ravel()
    return (
        ints,
        words64,
        sim[:n_gone],
        (n_gone, n_new, n_added_keys, n_counted, n_added_rows),
        n_entries,
        n_values,
        gone_chars,
        copied_chars,
        copied,
        new_counts,
    )


@numba.njit(cache=True, nogil=True)
def estimate_query(
    bucket_tables: tuple, keys: np.ndarray, sigs: np.ndarray, sig: np.ndarray, threshold: float
) -> tuple:
    """The earliest entry found in the buckets of ``keys`` whose signature (a row of ``sigs``) agrees
    with ``sig`` on at least ``threshold`` of the permutations, with that share; (-1, 0.0) if none."""
    bk_k, bk_v = bucket_tables
    cands = np.empty(keys.size, np.int64)
    nc = 0
    for b in range(keys.size):
        value = ht_get(bk_k, bk_v, keys[b])
        if value >= 0:
            cands[nc] = value
            nc += 1
    found = np.sort(cands[:nc])
    for c in range(nc):
        entry = found[c]
        if c and entry == found[c - 1]:
            continue
        same = 0
        for p in range(sig.size):
            same += sigs[entry, p] == sig[p]
        s = same / sig.size
        if s >= threshold:
            return entry, s
    return np.int64(-1), 0.0


# ---------------------------------------------------------------- one document's sketch
# The numpy definitions in dedup.py (``DedupStage._poly``, ``ShingleHash.vectorized``,
# ``NearIndex.band_key_array``, the sort of each unit's shingles) in one pass each: a document
# made dozens of small numpy calls, which cost more than the arithmetic on a 4 KB page.


@numba.njit(cache=True, nogil=True)
def fmix64(h: np.uint64) -> np.uint64:
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


@numba.njit(cache=True, nogil=True)
def poly_key(tokens: np.ndarray, start: int, end: int, base: np.uint64, length: np.uint64) -> np.uint64:
    """fmix64(sum_i tokens[start + i] * base**i + (end - start) * length mod 2**64)."""
    acc = np.uint64(0)
    power = np.uint64(1)
    for i in range(start, end):
        acc += tokens[i] * power
        power *= base
    return fmix64(acc + np.uint64(end - start) * length)


@numba.njit(cache=True, nogil=True)
def unit_keys(
    tokens: np.ndarray,
    raw: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    words: np.ndarray,
    raw_below: int,
    base: np.uint64,
    length: np.uint64,
) -> tuple:
    """``poly_key`` of every range [starts[u], ends[u]) and of all the tokens; units of fewer than
    ``raw_below`` words are keyed on ``raw`` (the tokens with the digits as written) if it is not empty, and
    so is a whole document of fewer: "Bayern 2, Dortmund 1" and "Bayern 0, Dortmund 3" are two results."""
    keys = np.empty(starts.size, np.uint64)
    total = 0
    for u in range(starts.size):
        source = raw if raw.size and words[u] < raw_below else tokens
        keys[u] = poly_key(source, starts[u], ends[u], base, length)
        total += words[u]
    whole = raw if raw.size and total < raw_below else tokens
    return keys, poly_key(whole, 0, whole.size, base, length)


@numba.njit(cache=True, nogil=True)
def unit_plan(
    tokens: np.ndarray,
    raw: np.ndarray,
    line_words: np.ndarray,
    line_written: np.ndarray,
    char_offsets: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    line_chars: np.ndarray,
    limits: np.ndarray,
    base: np.uint64,
    length: np.uint64,
) -> tuple:
    """Per unit (line ranges [starts[u], ends[u])): its written words (``line_written``: whitespace-
    separated tokens with a word in them), its exact key (``unit_keys``), the units matched as
    near-duplicates and their shingle ranges, and the units ``dedup_units`` decides on (at least
    min_words written words, or matched as near-duplicates: their positions, rows in the near arrays
    or -1, characters without the last newline, written words) with the characters of all the units.
    ``char_offsets`` (the token offset of each word, char shingles) is empty for word shingles (tokens
    are words). ``limits``: min_words, minhash_min_words, digits_min_words, ngram. One pass instead of
    a dozen numpy steps a document."""
    min_words, minhash_min, digits_min, n = limits[0], limits[1], limits[2], limits[3]
    units = starts.size
    words = np.empty(units, np.int64)
    t_start = np.empty(units, np.int64)
    t_end = np.empty(units, np.int64)
    # the words without digits of each unit decide whether it keeps its digits and is matched as a
    # near-duplicate: a date or a time ("21. Jan. 2015, 19:04") splits into several tokens that are
    # not words of the line
    plain = np.empty(units, np.int64)
    for u in range(units):
        w0, w1 = line_words[starts[u]], line_words[ends[u]]
        words[u] = w1 - w0
        if char_offsets.size:  # a unit's characters, without the space after its last word
            # (clamped: a wordless unit after the last word would start past the end)
            t_start[u] = min(char_offsets[w0], tokens.size)
            t_end[u] = max(t_start[u], char_offsets[w1] - 1)
        else:
            t_start[u], t_end[u] = w0, w1
        plain[u] = words[u]
        if raw.size:  # raw differs from tokens where the digits were normalized
            for w in range(w0, w1):
                if char_offsets.size:
                    for c in range(char_offsets[w], char_offsets[w + 1] - 1):
                        if raw[c] != tokens[c]:
                            plain[u] -= 1
                            break
                elif raw[w] != tokens[w]:
                    plain[u] -= 1
    keys, whole = unit_keys(tokens, raw, t_start, t_end, plain, digits_min, base, length)
    near = np.empty(units, np.int64)
    sh_start = np.empty(units, np.int64)
    sh_end = np.empty(units, np.int64)
    cand = np.empty(units, np.int32)  # int32: this travels from the workers (units < 2**31)
    near_pos = np.empty(units, np.int32)
    chars = np.empty(units, np.int64)
    written = np.empty(units, np.int32)
    cand_written = np.empty(units, np.int32)
    total = 0
    r = k = 0
    for u in range(units):
        size = line_chars[ends[u]] - line_chars[starts[u]] - 1  # without the last newline
        total += size
        row = -1
        if plain[u] >= minhash_min and t_end[u] - t_start[u] >= n:  # words as above
            row = r
            near[r], sh_start[r], sh_end[r] = u, t_start[u], t_end[u] - n + 1
            r += 1
        written[u] = line_written[ends[u]] - line_written[starts[u]]
        if written[u] >= min_words or row >= 0:  # (a long URL, a formula: one or two written words)
            cand[k], near_pos[k], chars[k], cand_written[k] = u, row, size, written[u]
            k += 1
    return (
        written,
        keys,
        whole,
        near[:r],
        sh_start[:r],
        sh_end[:r],
        (cand[:k], near_pos[:k], chars[:k], cand_written[:k], total),
    )


@numba.njit(cache=True, nogil=True)
def line_layout(cp: np.ndarray, is_space: np.ndarray) -> tuple:
    """Of the lines of a code point array (split at newline): their lengths, whether each is blank
    (empty or only whitespace, as ``str.isspace`` sees it: ``is_space`` covers the code points below
    its size) and where each starts (plus the end of the text + 1). One pass: the arrays are made for
    a line per code point (what is not written is never touched), not sized by a first pass counting
    the newlines (0.020 -> 0.015 s over the 40 MB input's 4,312 texts)."""
    n = cp.size
    lengths = np.empty(n + 1, np.int64)
    blank = np.empty(n + 1, np.bool_)
    starts = np.empty(n + 2, np.int64)
    starts[0] = 0
    line = 0
    empty = True
    for i in range(n):
        c = cp[i]
        if c == 10:
            lengths[line] = i - starts[line]
            blank[line] = empty
            line += 1
            starts[line] = i + 1
            empty = True
        elif empty and not (c < is_space.size and is_space[c]):
            empty = False
    lengths[line] = n - starts[line]
    blank[line] = empty
    starts[line + 1] = n + 1
    # (starts is kept with the sketch: a copy of its part, not the array made for n lines)
    return lengths[: line + 1], blank[: line + 1], starts[: line + 2].copy()


@numba.njit(cache=True, nogil=True)
def shingle_hashes(tokens: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """(sum_k tokens[i + k] * mult[k] mod 2**64) >> 32 of every n-gram of tokens (n = mult.size)."""
    n = mult.size
    count = max(0, tokens.size - n + 1)
    out = np.empty(count, np.uint32)
    for i in range(count):
        acc = np.uint64(0)
        for k in range(n):
            acc += tokens[i + k] * mult[k]
        out[i] = np.uint32(acc >> np.uint64(32))
    return out


@numba.njit(cache=True, nogil=True)
def band_keys(sigs: np.ndarray, bands: int, rows: int, row_mult: np.ndarray, salt: np.ndarray) -> np.ndarray:
    """fmix64(sum_r sig[b * rows + r] * row_mult[r] + salt[b] mod 2**64) per signature and band."""
    out = np.empty((sigs.shape[0], bands), np.uint64)
    for i in range(sigs.shape[0]):
        for b in range(bands):
            acc = np.uint64(0)
            for r in range(rows):
                acc += np.uint64(sigs[i, b * rows + r]) * row_mult[r]
            out[i, b] = fmix64(acc + salt[b])
    return out


@numba.njit(cache=True, nogil=True)
def unit_sets(shingles: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple:
    """The sorted unique shingle hashes of each range, concatenated, and their bounds.

    One radix sort for the whole document, not a sort per range: the values of all ranges by their
    four bytes (least significant first, each pass stable), then a stable pass by range. A quicksort
    per range (~40 values) mispredicted about every other comparison: 0.078 -> 0.030 s on the 40 MB
    input's 75k near units (3M values)."""
    units = starts.size
    total = 0
    for u in range(units):
        total += max(0, ends[u] - starts[u])
    a = np.empty(total, np.uint32)
    a_unit = np.empty(total, np.int32)
    counts = np.zeros((4, 256), np.int64)
    n = 0
    for u in range(units):
        for j in range(starts[u], ends[u]):
            v = shingles[j]
            a[n] = v
            a_unit[n] = u
            n += 1
            counts[0, v & 255] += 1
            counts[1, (v >> 8) & 255] += 1
            counts[2, (v >> 16) & 255] += 1
            counts[3, v >> 24] += 1
    b = np.empty(total, np.uint32)
    b_unit = np.empty(total, np.int32)
    for d in range(4):
        shift = 8 * d
        at = 0
        for k in range(256):  # where each digit's values start
            c = counts[d, k]
            counts[d, k] = at
            at += c
        for i in range(total):
            v = a[i]
            k = (v >> shift) & 255
            p = counts[d, k]
            counts[d, k] = p + 1
            b[p] = v
            b_unit[p] = a_unit[i]
        a, b = b, a
        a_unit, b_unit = b_unit, a_unit
    # by range, keeping the order: each range's values sorted, the ranges in order
    where = np.zeros(units + 1, np.int64)
    for i in range(total):
        where[a_unit[i] + 1] += 1
    for u in range(units):
        where[u + 1] += where[u]
    for i in range(total):
        u = a_unit[i]
        p = where[u]
        where[u] = p + 1
        b[p] = a[i]
    values = np.empty(total, np.uint32)
    cuts = np.zeros(units + 1, np.int64)
    n = at = 0
    for u in range(units):
        end = where[u]  # (now where range u ends in b)
        for j in range(at, end):
            if j == at or b[j] != b[j - 1]:
                values[n] = b[j]
                n += 1
        at = end
        cuts[u + 1] = n
    return values[:n], cuts


@numba.njit(cache=True, nogil=True)
def line_units(lengths: np.ndarray, blank: np.ndarray, per_line: bool) -> tuple:
    """Units of a document from its line lengths and blank flags: the runs of non-blank lines
    (paragraphs), or, ``per_line``, every non-blank line, plus the runs of at least two lines whose
    lines but the last are 30-120 characters wide (candidates for one hard-wrapped paragraph)."""
    n = lengths.size
    starts = np.empty(n, np.int64)
    ends = np.empty(n, np.int64)
    cand_starts = np.empty(n, np.int64)
    cand_ends = np.empty(n, np.int64)
    k = c = 0
    i = 0
    while i < n:
        if blank[i]:
            i += 1
            continue
        j = i
        while j < n and not blank[j]:
            j += 1
        if not per_line:
            starts[k], ends[k] = i, j
            k += 1
        else:
            for t in range(i, j):
                starts[k], ends[k] = t, t + 1
                k += 1
            even = j - i >= 2
            for t in range(i, j - 1):
                if lengths[t] < 30 or lengths[t] > 120:
                    even = False
                    break
            if even:
                cand_starts[c], cand_ends[c] = i, j
                c += 1
        i = j
    return starts[:k], ends[:k], cand_starts[:c], cand_ends[:c]


@numba.njit(cache=True, nogil=True)
def hard_wrapped(
    cp: np.ndarray,
    line_chars: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    is_space: np.ndarray,
    marks: np.ndarray,
) -> np.ndarray:
    """``dedup._hard_wrapped`` of each block of lines [starts[b], ends[b]) of a code point array whose
    lines start at ``line_chars`` (``line_layout``): at least 0.6 of its lines but the last do not end,
    trailing whitespace (``is_space``, as in ``line_layout``) aside, in one of ``marks``."""
    out = np.zeros(starts.size, np.bool_)
    for b in range(starts.size):
        unfinished = 0
        for t in range(starts[b], ends[b] - 1):
            first, j = line_chars[t], line_chars[t + 1] - 2  # the line's last character (before its newline)
            while j >= first and cp[j] < is_space.size and is_space[cp[j]]:
                j -= 1
            ended = False
            if j >= first:
                for m in marks:
                    if cp[j] == m:
                        ended = True
                        break
            if not ended:
                unfinished += 1
        out[b] = unfinished >= 0.6 * (ends[b] - 1 - starts[b])
    return out


@numba.njit(cache=True, nogil=True)
def line_unit_ranges(cp: np.ndarray, is_space: np.ndarray, marks: np.ndarray, per_line: bool, auto: bool) -> tuple:
    """A document's units as line ranges [start, end) (``dedup.unit_ranges`` of its lines: ``line_units``,
    and with ``auto`` the blocks ``hard_wrapped`` finds taken as one unit each) and where each line starts
    (``line_layout``): one call a document instead of four and the Python between them."""
    lengths, blank, line_chars = line_layout(cp, is_space)
    starts, ends, cand_starts, cand_ends = line_units(lengths, blank, per_line)
    if not auto or not cand_starts.size:
        return starts.copy(), ends.copy(), line_chars
    found = hard_wrapped(cp, line_chars, cand_starts, cand_ends, is_space, marks)
    if not found.any():
        return starts.copy(), ends.copy(), line_chars
    n = lengths.size
    keep = np.ones(n, np.bool_)
    line_ends = np.arange(1, n + 1)
    for b in range(cand_starts.size):
        if found[b]:
            keep[cand_starts[b] + 1 : cand_ends[b]] = False
            line_ends[cand_starts[b]] = cand_ends[b]
    kept = 0
    for u in range(starts.size):
        kept += keep[starts[u]]
    u_start = np.empty(kept, np.int64)
    u_end = np.empty(kept, np.int64)
    k = 0
    for u in range(starts.size):
        if keep[starts[u]]:
            u_start[k], u_end[k] = starts[u], line_ends[starts[u]]
            k += 1
    return u_start, u_end, line_chars


# ---------------------------------------------------------------- case folding

FOLD_SEVERAL = np.uint32(0x80000000)  # in a fold table: the code point folds to several, row (value & ~this)


@numba.njit(cache=True, nogil=True)
def casefold_points(cp: np.ndarray, table: np.ndarray, several: np.ndarray) -> np.ndarray:
    """``str.casefold`` on code points: it folds each on its own (no context), to one code point
    (``table[c]``, code points from ``table.size`` on fold to themselves) or to the two or three of
    row ``table[c] & ~FOLD_SEVERAL`` of ``several`` (0 pads). The text's casefold() and then its code
    points took ~3x as long (a second copy of the text, as str, then as code points)."""
    size = cp.size
    for i in range(cp.size):  # the folded length first: ß -> ss makes it longer
        c = cp[i]
        if c < table.size and table[c] & FOLD_SEVERAL:
            row = several[table[c] & ~FOLD_SEVERAL]
            size += (row[1] != 0) + (row[2] != 0)
    out = np.empty(size, np.uint32)
    j = 0
    for i in range(cp.size):
        c = cp[i]
        if c < table.size:
            f = table[c]
            if f & FOLD_SEVERAL:
                row = several[f & ~FOLD_SEVERAL]
                for k in range(3):
                    if k == 0 or row[k] != 0:
                        out[j] = row[k]
                        j += 1
                continue
            c = f
        out[j] = c
        j += 1
    return out
