"""re_cache: regular expressions compiled by an earlier process are the same pattern objects, without
compiling them again; warnings, errors and damaged files behave as without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter with re_cache's folder at argv[1]: compile PATTERNS, print what is asked.
_SCRIPT = """
import re, sys, warnings
from pathlib import Path
from re import _compiler, _parser
from pipeline import re_cache
re_cache.CACHE_DIR = Path(sys.argv[1])
original = _compiler.compile
re_cache.install()
parsed = []
parse = _parser.parse
_parser.parse = lambda *args: parsed.append(args[0]) or parse(*args)
PATTERNS = [
    ("|".join(f"word{i}(?:abc|de[fg])" for i in range(2000)), 0),  # (~30 ms: worth saving)
    (r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})|(x)", re.IGNORECASE),
    (rb"[\\x00-\\x1f]+(?P<tail>.)", 0),
    (r"(?i)straße", 0),
]
compiled = [re.compile(pattern, flags) for pattern, flags in PATTERNS]
print(sum(p == PATTERNS[0][0] for p in parsed), compiled[1].match("2024-05").group("month"))
for (pattern, flags), one in zip(PATTERNS, compiled):
    same = original(pattern, flags)  # (re's own: equal means the same code, flags and pattern)
    assert one == same and one.groupindex == same.groupindex and one.groups == same.groups, pattern
    assert one.flags == same.flags
with warnings.catch_warnings(record=True) as said:
    warnings.simplefilter("always")
    re.compile("[[a]")  # FutureWarning: possible nested set
print(len(said), said[0].category.__name__ if said else None)
try:
    re.compile("(unclosed")
except re.error as err:
    print("error", err.pos)
"""


def _run(folder: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(folder)], capture_output=True, text=True, check=False, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()


def test_patterns_come_from_the_saved_copy_equal_to_res_own(tmp_path: Path) -> None:
    # first process: compiles (parses) and saves; second: the same objects without parsing the pattern
    assert _run(tmp_path) == ["1", "05", "1", "FutureWarning", "error", "0"]
    (saved,) = tmp_path.glob("re_patterns-*.marshal")
    assert _run(tmp_path) == ["0", "05", "1", "FutureWarning", "error", "0"]  # (the warning still given)
    # a damaged copy is not used (compiled again, and saved again)
    data = bytearray(saved.read_bytes())
    data[len(data) // 2] ^= 0x40
    saved.write_bytes(bytes(data))
    assert _run(tmp_path) == ["1", "05", "1", "FutureWarning", "error", "0"]
    assert _run(tmp_path) == ["0", "05", "1", "FutureWarning", "error", "0"]


def test_only_patterns_worth_it_are_saved_and_not_those_that_warn(tmp_path: Path) -> None:
    code = f"""
import re, sys
from pathlib import Path
from pipeline import re_cache
re_cache.CACHE_DIR = Path({str(tmp_path)!r})
re_cache.install()
re.compile(sys.argv[1])
re.compile("[[b]")
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-W", "ignore", "-c", code, "ab+c"], check=True, env=env)
    assert not list(tmp_path.iterdir())  # (a pattern this cheap: not worth writing the file for)
    big = "|".join(f"w{i}x+" for i in range(2000))
    subprocess.run([sys.executable, "-W", "ignore", "-c", code, big], check=True, env=env)
    check = f"""
import marshal
from pathlib import Path
(path,) = Path({str(tmp_path)!r}).glob("re_patterns-*.marshal")
saved = {{p for p, _ in marshal.loads(path.read_bytes()[32:])}}
print({big!r} in saved, "[[b]" in saved, "ab+c" in saved)
"""
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.split() == ["True", "False", "False"]  # ("[[b]" warned: not saved; "ab+c": not then)


_REGEX_SCRIPT = """
import sys
from pathlib import Path
import regex
from regex import _regex_core
from pipeline import re_cache
re_cache.CACHE_DIR = Path(sys.argv[1])
re_cache.install()
re_cache.hook_regex()
parsed = []
parse = _regex_core._parse_pattern
_regex_core._parse_pattern = lambda *args: parsed.append(1) or parse(*args)
big = "|".join(f"(?<![\\\\p{{L}}])w{i}\\\\p{{Lu}}+[\\\\p{{Han}}a-z]{{2,}}" for i in range(600))
one = regex.compile(big, regex.IGNORECASE)
print(len(parsed) > 0, bool(one.search("xx W599ÀB漢z yy")), one.flags & regex.IGNORECASE != 0)
print(regex.compile(big, regex.IGNORECASE) is one)  # (regex's own cache has it)
named = regex.compile(r"\\L<words>", words=["a", "b"])  # (a named list: not saved)
print(bool(named.fullmatch("b")), bool(regex.compile(r"(?P<x>[0-9]+)-\\g<x>").fullmatch("12-12")))
"""


def test_regex_patterns_come_from_the_saved_copy_too(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def run() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", _REGEX_SCRIPT, str(tmp_path)], capture_output=True, text=True, check=False, env=env
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.split()

    assert run() == ["True", "True", "True", "True", "True", "True"]
    assert run() == ["False", "True", "True", "True", "True", "True"]  # (not parsed: the saved one)
