"""Differential check of two trees of cleancorpus on adversarial text.

Writes seeded, deterministic JSONL inputs that aim at the code-point kernels (case folds, astral
characters, line breaks, very long lines, repeated and near-duplicate lines and documents, mixed
languages within a line), runs ``python -m pipeline run IN -o OUT -q --workers W`` in both trees
and compares the outputs (``OUT/*.jsonl``, ``removed.jsonl``, ``rejected.jsonl``) byte for byte,
printing the first differing document of each file that differs.

Run from anywhere: ``python benchmarks/diff_check.py BASE_TREE NEW_TREE [--seed N] [--docs N]
[--workers 1 2] [--work DIR] [--rounds-only NAME ...]``. Exit status 1 if anything differs or a
run fails in one tree only (a crash is reported with its stderr's tail).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SENTENCES = SHARED / "corpora" / "lingua-sentences"

# Characters whose case mapping or folding is not one code point to one code point, or is
# language-specific, or are otherwise special for a table lowering.
FOLD_TRAPS = [
    "ß",
    "ẞ",
    "ﬁ",
    "ﬂ",
    "ﬀ",
    "ﬃ",
    "ﬄ",
    "ﬅ",
    "ﬆ",
    "İ",
    "ı",
    "I",
    "i",
    "Σ",
    "σ",
    "ς",
    "ΐ",
    "ΰ",
    "ά",
    "Ά",
    "ώ",
    "Ώ",
    "ᾼ",
    "ᾳ",
    "ﬓ",
    "և",
    "Ꭰ",
    "ꭰ",
    "Ᏸ",
    "ᏸ",
    "Ა",
    "ა",
    "Ჾ",
    "ǅ",
    "ǈ",
    "ǋ",
    "ǲ",
    "ŉ",
    "ǰ",
    "ẖ",
    "K",
    "Å",
    "Ω",
    "ſ",
    "ẛ",
    "ﬗ",
    "Ⅻ",
    "ⅻ",
    "Ⓐ",
    "ⓐ",
    "𐐀",
    "𐐨",
    "𞤀",
    "𞤢",
    "ǰ",
    "İstanbul",
    "ΣΊΣΥΦΟΣ",
]
ASTRAL = ["😀", "👩‍👩‍👧", "🇩🇪", "𝐀𝐁𝐂", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𠀀𠀁𠀂", "𪜀", "𝟘𝟙", "🏳️‍🌈", "𓀀", "𐍈"]
SPACES = ["\u00a0", "\u2028", "\u2029", "\t", "\u200b", "\u200c", "\u200d", "\u3000", "\u2009", "\ufeff"]
COMBINING = ["\u0301", "\u0308", "\u0327", "\u20dd", "\u0345", "\u0307"]
BREAKS = ["\n", "\r\n", "\r", "\n\n", "\r\n\r\n", "\u2028", "\u0085", "\x0c", "\x0b"]
URLS = [
    "https://example.com/a/b?c=d&e=f#g",
    "http://xn--mnchen-3ya.de/straße",
    "https://ΣΊΣΥΦΟΣ.gr/İstanbul?q=ß",
    "www.example.org/😀",
]
CODE = [
    "def f(x):\n    return x ** 2  # ß\n",
    "```python\nfor i in range(10):\n\tprint(i)\n```",
    '<div class="nav">Home | About | Contact</div>',
    "SELECT * FROM t WHERE name = 'İSTANBUL';",
    '{"key": [1, 2, 3], "ß": null}',
]
# Code-like tokens to glue to words of any script (the language stage's code-token scan and its word
# boundaries beside non-ASCII letters, marks and astral characters).
CODE_TOKENS = [
    "foo_bar",
    "a->b",
    "x::y",
    "obj.method",
    "path/to/file",
    "k=v",
    "_x",
    "A.b",
    "1.x",
    "é_z",
    "x.Y",
    "->",
    "::",
]


def load_sentences() -> dict[str, list[str]]:
    """Every language's sentences (the 75-language corpus), by ISO code."""
    out = {}
    for path in sorted(SENTENCES.glob("*.txt")):
        lines = [s for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
        out[path.stem] = lines
    return out


class Gen:
    """Seeded document generators, each giving a list of texts."""

    def __init__(self, seed: int, sentences: dict[str, list[str]]) -> None:
        self.r = random.Random(seed)
        self.s = sentences
        self.langs = sorted(sentences)

    def sent(self, lang: str | None = None) -> str:
        lang = lang or self.r.choice(self.langs)
        return self.r.choice(self.s[lang])

    def para(self, lang: str | None = None, n: int = 4) -> str:
        lang = lang or self.r.choice(self.langs)
        return " ".join(self.sent(lang) for _ in range(n))

    def mixed(self) -> str:
        """Languages mixed across paragraphs, within a paragraph and within one sentence."""
        r = self.r
        main = r.choice(self.langs)
        paras = []
        for _ in range(r.randint(2, 8)):
            kind = r.random()
            if kind < 0.4:
                paras.append(self.para(main, r.randint(2, 6)))
            elif kind < 0.7:
                paras.append(" ".join(self.sent(r.choice([main, None])) for _ in range(r.randint(2, 6))))
            else:
                a, b = self.sent(main).split(" "), self.sent().split(" ")
                cut = r.randint(0, len(a))
                paras.append(" ".join(a[:cut] + b + a[cut:]))
        return r.choice(["\n\n", "\n", "\r\n\r\n"]).join(paras)

    def sprinkle(self, text: str, pool: list[str], rate: float) -> str:
        """Put items of ``pool`` at word starts, ends and inside words."""
        r = self.r
        out = []
        for word in text.split(" "):
            if r.random() < rate:
                where = r.randint(0, 2)
                item = r.choice(pool)
                if where == 0:
                    word = item + word
                elif where == 1:
                    word = word + item
                else:
                    cut = r.randint(0, len(word))
                    word = word[:cut] + item + word[cut:]
            out.append(word)
        return " ".join(out)

    def casefold(self) -> str:
        r = self.r
        lang = r.choice(["de", "tr", "el", "hy", "ka", "az", "en", "lt", "nl"])
        lines = []
        for _ in range(r.randint(3, 12)):
            s = self.sent(lang)
            s = self.sprinkle(s, FOLD_TRAPS, 0.2)
            f = r.random()
            if f < 0.2:
                s = s.upper()
            elif f < 0.3:
                s = s.title()
            elif f < 0.4:
                s = s.lower()
            lines.append(s)
        return "\n".join(lines)

    def astral(self) -> str:
        r = self.r
        lines = []
        for _ in range(r.randint(3, 12)):
            s = self.sprinkle(self.sent(), ASTRAL, 0.15)
            if r.random() < 0.3:
                s = r.choice(ASTRAL) + s
            if r.random() < 0.3:
                s = s + r.choice(ASTRAL)
            lines.append(s)
        if r.random() < 0.2:
            lines.append("".join(r.choice(ASTRAL) for _ in range(r.randint(1, 300))))
        return "\n".join(lines)

    def spaces(self) -> str:
        r = self.r
        parts = []
        for _ in range(r.randint(3, 12)):
            s = self.sprinkle(self.sent(), SPACES + COMBINING, 0.2)
            parts.append(s)
            parts.append(r.choice(BREAKS))
        if r.random() < 0.3:
            parts.insert(0, r.choice(["\r", "\n", " \t ", "\u2028", "\ufeff"]))
        return "".join(parts)

    def long_line(self) -> str:
        r = self.r
        target = r.choice([40_000, 65_535, 65_536, 70_000, 131_073])
        pieces, n = [], 0
        astral = r.random() < 0.5
        while n < target:
            s = self.sent()
            if astral:
                s = self.sprinkle(s, ASTRAL, 0.1)
            pieces.append(s)
            n += len(s) + 1
        line = " ".join(pieces)[:target]
        other = [self.sent() for _ in range(r.randint(0, 5))]
        at = r.randint(0, len(other))
        return "\n".join(other[:at] + [line] + other[at:])

    def short_lines(self) -> str:
        r = self.r
        words = self.para(n=20).split(" ")
        out = []
        for _ in range(r.randint(500, 5000)):
            out.append(r.choice(words + ["", " ", "|", "»", "1.", "ß", "İ", "😀"])[: r.randint(0, 4)])
        return "\n".join(out)

    def empty(self) -> str:
        return self.r.choice(["", " ", "\n", "\r\n", "\t", "\u00a0", "\u2028", "\u3000\n", "\ufeff", "\n\n\n \n"])

    def wrapped(self) -> str:
        """Hard-wrapped paragraphs (dedup's auto unit), lines ending in traps: marks, spaces of all kinds."""
        r = self.r
        width = r.randint(30, 120)
        paras = []
        for _ in range(r.randint(1, 4)):
            words = self.sprinkle(self.para(n=r.randint(3, 8)), FOLD_TRAPS + ASTRAL, 0.03).split(" ")
            lines, cur = [], ""
            for w in words:
                if cur and len(cur) + 1 + len(w) > width:
                    lines.append(cur + r.choice(["", "", " ", "\u00a0", "\t", "\u3000", "\x1c", "\u2028", "\r"]))
                    cur = w
                else:
                    cur = f"{cur} {w}" if cur else w
            lines.append(cur)
            paras.append("\n".join(lines))
        return "\n\n".join(paras)

    def code(self) -> str:
        r = self.r
        parts = []
        for _ in range(r.randint(2, 6)):
            parts.append(r.choice([self.para(n=2), r.choice(CODE), " ".join(r.choices(URLS, k=3))]))
            if r.random() < 0.5:
                glue = CODE_TOKENS + ["é", "\u0301", "ß", "😀", "٣", "İ", "ⅻ", "·"]
                parts.append(self.sprinkle(self.para(n=3), glue, 0.3))
        return "\n\n".join(parts)


def boilerplate_lines(g: Gen) -> list[str]:
    """Lines to repeat across many documents, differing by case, trailing spaces or a fold."""
    base = [
        "Home | About us | Contact | Impressum",
        "© 2024 Straße Verlag GmbH — Alle Rechte vorbehalten",
        "İLETİŞİM · Gizlilik Politikası",
        "ΟΡΟΙ ΧΡΗΣΗΣ ΚΑΙ ΠΟΛΙΤΙΚΗ ΑΠΟΡΡΗΤΟΥ",
        "Share on 😀 Facebook 𝐓𝐰𝐢𝐭𝐭𝐞𝐫",
        "Subscribe to our newsletter",
        "ﬁnd us on the map",
        "Read more »",
        "𠀀𠀁 related articles 𠀂",
        "x" * 70_000,
    ]
    out = []
    for line in base:
        out += [line, line.upper(), line.lower(), line + " ", line + "\t", line.casefold(), " " + line]
    return out


def dedup_family(g: Gen, n: int) -> list[str]:
    """A document and copies of it with small edits (a word, a fold, case, spacing, astral)."""
    r = g.r
    lang = r.choice(g.langs)
    original = "\n\n".join(g.para(lang, r.randint(2, 5)) for _ in range(r.randint(1, 6)))
    if r.random() < 0.5:
        original = g.sprinkle(original, FOLD_TRAPS + ASTRAL, 0.05)
    docs = [original]
    edits: list[Callable[[str], str]] = [
        lambda t: t,
        lambda t: t.upper(),
        lambda t: t.replace("ss", "ß"),
        lambda t: t.replace("ß", "ss"),
        lambda t: t.replace("fi", "ﬁ"),
        lambda t: t.replace("i", "İ", 3),
        lambda t: t.replace("σ ", "ς "),
        lambda t: t.replace(" ", "  ", 5),
        lambda t: t.replace("\n\n", "\r\n\r\n"),
        lambda t: t + " " + g.sent(),
        lambda t: t[: len(t) // 2],
        lambda t: g.sprinkle(t, ASTRAL, 0.02),
        lambda t: t.replace("e", "e\u0301", 4),
        lambda t: t.swapcase(),
    ]
    for _ in range(n - 1):
        docs.append(r.choice(edits)(original))
    return docs


def generate(seed: int, docs: int) -> dict[str, list[dict]]:
    """Input files (name -> records) for one round."""
    g = Gen(seed, load_sentences())
    r = g.r
    kinds: list[tuple[str, Callable[[], str]]] = [
        ("mixed", g.mixed),
        ("casefold", g.casefold),
        ("astral", g.astral),
        ("spaces", g.spaces),
        ("code", g.code),
        ("empty", g.empty),
        ("wrapped", g.wrapped),
    ]
    files: dict[str, list[dict]] = {}
    per = max(docs // 4, 1)
    # 1. Single documents of each kind, some with shared boilerplate lines mixed in.
    bp = boilerplate_lines(g)
    texts = []
    for i in range(per):
        name, fn = kinds[i % len(kinds)]
        text = fn()
        if r.random() < 0.5 and name != "empty":
            lines = text.split("\n")
            for _ in range(r.randint(1, 4)):
                lines.insert(r.randint(0, len(lines)), r.choice(bp))
            text = "\n".join(lines)
        texts.append((name, text))
    files["a_kinds.jsonl"] = [{"id": f"a{i:04d}-{k}", "text": t} for i, (k, t) in enumerate(texts)]
    # 2. Boilerplate: many documents sharing lines (identical, by case, trailing spaces).
    recs = []
    for i in range(per):
        lines = [g.sent(r.choice(["en", "de", "tr", "el", "ru"])) for _ in range(r.randint(2, 8))]
        for _ in range(r.randint(2, 6)):
            lines.insert(r.randint(0, len(lines)), r.choice(bp[: r.randint(7, len(bp))]))
        recs.append({"id": f"b{i:04d}", "text": r.choice(["\n", "\r\n"]).join(lines)})
    files["b_boiler.jsonl"] = recs
    # 3. Dedup families.
    recs = []
    i = 0
    while len(recs) < per:
        fam = dedup_family(g, r.randint(2, 6))
        for j, t in enumerate(fam):
            recs.append({"id": f"c{i:04d}-{j}", "text": t})
        i += 1
    r.shuffle(recs)
    files["c_dedup.jsonl"] = recs
    # 3b. Hard-wrapped documents and copies of their paragraphs, rewrapped or with a changed line end.
    recs = []
    for i in range(per // 2):
        t = g.wrapped()
        recs.append({"id": f"e{i:04d}", "text": t})
        if r.random() < 0.6:
            paras = t.split("\n\n")
            p = r.choice(paras)
            p = r.choice([p, p.replace("\n", " "), p.replace(" ", "\n", 3), p.upper(), p.rstrip() + "."])
            recs.append({"id": f"e{i:04d}-copy", "text": g.para() + "\n\n" + p})
    files["e_wrapped.jsonl"] = recs
    # 4. Heavy documents: long lines and huge numbers of short lines (few of them: they are slow).
    recs = []
    for i in range(max(per // 10, 2)):
        t = g.long_line() if i % 2 == 0 else g.short_lines()
        recs.append({"id": f"d{i:04d}", "text": t})
    # more lines than a uint16 holds and than the boilerplate line cache keeps (100,000)
    words = g.para(n=5).split(" ")
    lines = [" ".join(r.choices(words, k=r.randint(1, 3))) for _ in range(r.choice([65_537, 100_001]))]
    recs.append({"id": "d-many-lines", "text": "\n".join(lines)})
    files["d_heavy.jsonl"] = recs
    return files


# Configs besides the defaults: each a list of stages (a stage left out does not run) with options that
# let more of the adversarial text reach the kernels (no line-break repair or normalization first) or
# take the stages' other paths.
_RAW_ENCODING = {"stage": "encoding", "fix_line_breaks": False, "normalization": None, "remove_control_chars": False}
CONFIGS: dict[str, list[dict]] = {
    "raw": [_RAW_ENCODING, {"stage": "boilerplate"}, {"stage": "language"}, {"stage": "dedup"}],
    "dedup-para": [
        _RAW_ENCODING,
        {"stage": "language", "action": "tag"},
        {
            "stage": "dedup",
            "unit": "paragraph",
            "strip_punctuation": False,
            "normalize_digits": False,
            "verify": "estimate",
        },
    ],
    "dedup-line-char": [
        _RAW_ENCODING,
        {"stage": "dedup", "unit": "line", "shingle": "char", "ngram": 7},
        {"stage": "normalize"},
    ],
    "lang-bp": [
        {"stage": "encoding", "normalization": "NFKC"},
        {"stage": "boilerplate", "recurring_min_documents": 2, "recurring_site_min_documents": 2},
        {
            "stage": "language",
            "main_languages_max": 2,
            "bilingual_share": 0.3,
            "languages": ["en", "de", "tr", "el", "ru"],
        },
        {"stage": "dedup", "threshold": 0.5, "document_threshold": 0.6},
        {"stage": "normalize"},
    ],
    "dedup-nolower": [
        {"stage": "encoding"},
        {"stage": "boilerplate"},
        {"stage": "dedup", "lowercase": False, "scope": "document", "min_words": 1, "short_words": 1},
    ],
}


def write_config(path: Path, name: str) -> None:
    import yaml

    path.write_text(
        yaml.safe_dump({"output": {"metadata_field": "meta"}, "stages": CONFIGS[name]}, allow_unicode=True),
        encoding="utf-8",
    )


def write_odd_files(folder: Path, seed: int) -> None:
    """Input the readers must take apart: odd JSONL records and lines (ids of other types, escaped lone
    surrogates, NUL, extra fields, big integers, a BOM, CRLF ends, blank and broken lines) and .txt files
    in other encodings."""
    r = random.Random(seed)
    g = Gen(seed, load_sentences())
    lines = [
        '{"id": 7, "text": "number id \\ud800 lone surrogate", "n": 123456789012345678901234567890}',
        '{"id": "dup", "text": "same id twice", "meta": {"a": [1, 2.5e300, null, true]}}',
        '{"id": "dup", "text": "same id twice"}',
        '{"id": "nul", "text": "a\\u0000b\\u001bc \\udfff\\ud83d\\ude00"}',
        '{"id": "notext", "body": "no text field"}',
        '{"id": "nonstr", "text": 5}',
        "{broken json",
        "",
        "   ",
        '{"text": "no id field"}',
        json.dumps({"id": "esc", "text": g.mixed()}),
        json.dumps({"id": "wide", "text": g.astral()}, ensure_ascii=True),
        json.dumps({"id": "crlf-in-text", "text": g.spaces()}, ensure_ascii=False),
    ]
    r.shuffle(lines)
    (folder / "f_odd.jsonl").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    odd = folder / "g_txt"
    odd.mkdir(exist_ok=True)
    (odd / "latin1.txt").write_bytes(g.para("de").encode("latin-1", "replace"))
    (odd / "cp1254.txt").write_bytes(g.para("tr").encode("cp1254", "replace"))
    (odd / "utf16.txt").write_bytes(g.casefold().encode("utf-16"))
    (odd / "mixed.txt").write_bytes(g.mixed().encode("utf-8") + b"\xff\xfe bad bytes \xc3\x28")
    (odd / "empty.txt").write_bytes(b"")
    (odd / "crlf.txt").write_bytes(g.wrapped().replace("\n", "\r\n").encode("utf-8"))


def write_input(folder: Path, seed: int, docs: int, with_seeds: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, recs in generate(seed, docs).items():
        with open(folder / name, "w", encoding="utf-8") as fh:
            for rec in recs:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    write_odd_files(folder, seed)
    if with_seeds:
        for src in [SHARED / "seeds", REPO / "samples"]:
            if src.is_dir():
                shutil.copytree(src, folder / src.name, dirs_exist_ok=True)


def run(tree: Path, inp: Path, out: Path, workers: int, config: Path | None = None) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "pipeline", "run", str(inp), "-o", str(out), "-q", "--workers", str(workers)]
    if config is not None:
        cmd += ["-c", str(config)]
    p = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    return p.returncode, p.stderr


def output_files(out: Path) -> list[Path]:
    keep = []
    for path in sorted(out.rglob("*")):
        if path.is_file() and path.suffix in (".jsonl", ".txt") and ".cleancorpus" not in path.parts:
            keep.append(path.relative_to(out))
    return keep


def lines_of(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        yield from fh


def first_difference(a: Path, b: Path) -> str:
    """The first differing line of two files, as a short description with its document id."""
    la, lb = list(lines_of(a)), list(lines_of(b))
    for i in range(max(len(la), len(lb))):
        x = la[i] if i < len(la) else None
        y = lb[i] if i < len(lb) else None
        if x != y:

            def show(line: str | None) -> str:
                if line is None:
                    return "<missing>"
                try:
                    rec = json.loads(line)
                except ValueError:
                    return repr(line[:300])
                if not isinstance(rec, dict):  # a text output's line that reads as a JSON number or list
                    return repr(line[:300])
                brief = {k: v for k, v in rec.items() if k != "text"}
                text = rec.get("text", "")
                brief["text"] = text[:200] + (f"... ({len(text)} chars)" if len(text) > 200 else "")
                return json.dumps(brief, ensure_ascii=False)

            return f"line {i + 1} of {len(la)}/{len(lb)}\n    base: {show(x)}\n    new:  {show(y)}"
    return "identical"


def compare(base_out: Path, new_out: Path) -> list[str]:
    diffs = []
    names = sorted(set(output_files(base_out)) | set(output_files(new_out)))
    for name in names:
        a, b = base_out / name, new_out / name
        if not a.exists() or not b.exists():
            diffs.append(f"{name}: only in {'new' if b.exists() else 'base'}")
        elif a.read_bytes() != b.read_bytes():
            diffs.append(f"{name}: {first_difference(a, b)}")
    return diffs


def run_both(
    tag: str, base: Path, new: Path, inp: Path, outs: dict[str, Path], workers: int, config: Path | None
) -> bool:
    """Run both trees on ``inp`` into ``outs`` and print how their outputs compare; True if they differ."""
    codes = {}
    for label, tree in (("base", base), ("new", new)):
        code, err = run(tree.resolve(), inp.resolve(), outs[label], workers, config)
        codes[label] = code
        if code not in (0, 3):
            print(f"{tag} {label}: exit {code}\n{err[-3000:]}")
    failed = codes["base"] != codes["new"]
    if failed:
        print(f"{tag}: exit status base {codes['base']} new {codes['new']}")
    diffs = compare(outs["base"], outs["new"])
    if diffs:
        print(f"{tag}: {len(diffs)} file(s) differ")
        for d in diffs:
            print("  " + d)
        return True
    print(f"{tag}: identical ({len(output_files(outs['new']))} files), exit {codes['new']}")
    return failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("base", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--docs", type=int, default=200, help="about how many generated documents")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--no-seeds", action="store_true", help="leave out shared/seeds and samples/")
    ap.add_argument("--work", type=Path, help="folder for inputs and outputs (kept); default a temp dir")
    ap.add_argument("--input", type=Path, help="use this input instead of generating one")
    ap.add_argument(
        "--configs", nargs="+", default=["default"], choices=["default", *CONFIGS], help="configs to run each in"
    )
    ap.add_argument(
        "--incremental", action="store_true", help="two runs on one output folder: half the input, then all of it"
    )
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="diffcheck-"))
    inp = args.input or work / f"in-{args.seed}"
    if not args.input:
        if inp.exists():
            shutil.rmtree(inp)
        write_input(inp, args.seed, args.docs, not args.no_seeds)
    failed = False
    # --incremental: the first run reads the first half of the input's entries, the second (same output
    # folder: its state, the dedup index saved by the first) all of them
    entries = sorted(inp.iterdir())
    steps = [entries[: len(entries) // 2], entries] if args.incremental else [entries]
    for cfg in args.configs:
        config = None
        if cfg != "default":
            config = work / f"{cfg}.yaml"
            write_config(config, cfg)
        for w in args.workers:
            outs = {label: work / f"out-{args.seed}-{cfg}-{label}-w{w}" for label in ("base", "new")}
            for out in outs.values():
                if out.exists():
                    shutil.rmtree(out)
            for step, present in enumerate(steps):
                tag = f"seed {args.seed} {cfg} w{w}" + (f" step {step + 1}" if len(steps) > 1 else "")
                step_in = inp
                if len(steps) > 1:  # the entries copied in (a step adds to what the one before had)
                    step_in = work / f"in-{args.seed}-step"
                    if step == 0 and step_in.exists():
                        shutil.rmtree(step_in)
                    step_in.mkdir(exist_ok=True)
                    for entry in present:
                        if not (step_in / entry.name).exists():
                            copy = shutil.copytree if entry.is_dir() else shutil.copy2
                            copy(entry, step_in / entry.name)
                failed |= run_both(tag, args.base, args.new, step_in, outs, w, config)
    print(f"work folder: {work}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
