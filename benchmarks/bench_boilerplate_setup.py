"""Set-up cost of the boilerplate stage per process: CPU seconds (``time.process_time``) of importing the
module, of ``BoilerplateStage()`` and of its parts, and of a rebuild by unpickling (what each worker and the
runner's warm-up copy do), each in a fresh process; medians over ``--runs`` processes.

    python benchmarks/bench_boilerplate_setup.py [--runs 5]

The parts are timed by wrapping the stage's set-up functions in the child process; a wrapped function
that another wrapped one calls is counted in both (``scorer (numba start-up)`` includes the first
compiled call of the process, which loads numba's machinery: any first kernel call pays it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, pickle, time
t0 = time.process_time()
import pipeline.stages.boilerplate as bp
parts = {"import": time.process_time() - t0}

def wrap(owner, name, label):
    fn = getattr(owner, name, None)
    if fn is None:  # an older version of the stage
        return
    def timed(*args, **kwargs):
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            parts[label] = parts.get(label, 0.0) + time.process_time() - start
    setattr(owner, name, timed)

for owner, name, label in [
    (bp.BoilerplateStage, "_load_packs", "packs (YAML)"),
    (bp, "_compile", "pattern checks (regex)"),
    (bp.BoilerplateStage, "_combine", "combined alternation (re)"),
    (bp.BoilerplateStage, "_init_buckets", "first characters (parser)"),
    (bp, "_trie_regex", "phrase trie"),
    (bp, "_crumb_classes", "breadcrumb tables"),
    (bp, "_shipped_scorer", "scorer (numba start-up)"),
    (bp, "_shipped_context", "context model + lexicon"),
]:
    wrap(owner, name, label)
start = time.process_time()
stage = bp.BoilerplateStage()
parts["BoilerplateStage()"] = time.process_time() - start
built = dict(parts)  # the parts of the first build only
blob = pickle.dumps(stage)
start = time.process_time()
pickle.loads(blob)
built["rebuild (unpickle)"] = time.process_time() - start
print(json.dumps(built))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh processes (medians are reported)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rows = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", CHILD], env=env, check=True, capture_output=True, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"CPU seconds, median of {args.runs} fresh processes (load average {os.getloadavg()[0]:.1f})")
    for key in rows[0]:
        print(f"  {key:28s} {statistics.median(r.get(key, 0.0) for r in rows):.4f}")


if __name__ == "__main__":
    main()
