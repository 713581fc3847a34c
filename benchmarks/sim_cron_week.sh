#!/bin/bash
# A week of nightly cron runs on a growing folder, as README's cron line runs them (--quiet, a JSON log):
# new files each night, one file edited, one deleted, bad bytes / malformed JSONL lines / a binary file /
# empty files, a run ended by SIGTERM, a run killed by SIGKILL, two runs started at once. Prints, per
# night, the exit status, the bytes on stdout and stderr and what report.json says was processed.
#   benchmarks/sim_cron_week.sh [WORKDIR]        (default /tmp/cron-week; needs ../shared/corpora)
REPO=$(cd "$(dirname "$0")/.." && pwd); W=${1:-/tmp/cron-week}; IN=$W/in; OUT=$W/out
CC=${CLEANCORPUS_SHARED:-$REPO/../shared}/corpora/cc-2019-30-dolma/docs.jsonl
TRAF=${CLEANCORPUS_SHARED:-$REPO/../shared}/corpora/trafilatura-testpages/text/docs.jsonl
rm -rf "$IN" "$OUT" "$W/logs"; mkdir -p "$IN" "$W/logs"
cc() { PYTHONPATH=$REPO python -m pipeline "$@"; }
report() { python -c "import json;r=json.load(open('$OUT/report.json'));i=r['inputs'];print(i['processed'],'of',i['files'],'files processed,',i['changed'],'changed;',r['documents']['in'],'documents')"; }
night() {
  local n=$1; shift
  cc run "$IN" -o "$OUT" --quiet --log-file "$W/logs/log.jsonl" --log-json "$@" >"$W/logs/$n.out" 2>"$W/logs/$n.err"
  echo "night $n: exit $?, stdout $(wc -c <"$W/logs/$n.out") B, stderr $(wc -c <"$W/logs/$n.err") B; $(report)"
  [ -s "$W/logs/$n.err" ] && head -c 400 "$W/logs/$n.err" && echo
}
sed -n 1,80p "$CC" >"$IN/2019-07-01.jsonl"; sed -n 81,160p "$CC" >"$IN/2019-07-01b.jsonl"
night 1
sed -n 161,240p "$CC" >"$IN/2019-07-02.jsonl"
python - "$IN" <<'PY'
import json, sys
folder = sys.argv[1]
path = f"{folder}/2019-07-01b.jsonl"  # an earlier file edited: one document corrected
lines = open(path).read().splitlines()
doc = json.loads(lines[3]); doc["text"] += "\n\nCorrection appended on day two."; lines[3] = json.dumps(doc)
open(path, "w").write("\n".join(lines) + "\n")
with open(f"{folder}/2019-07-02-repeats.jsonl", "w") as out:  # night 1's paragraphs again
    for i, d in enumerate(json.loads(l) for l in open(f"{folder}/2019-07-01.jsonl")):
        paras = [p for p in d["text"].split("\n") if len(p.split()) > 12][:2]
        if i < 10 and paras:
            out.write(json.dumps({"id": f"rep{i}", "text": f"Written today for repeat test {i}.\n\n" + "\n\n".join(paras)}) + "\n")
PY
night 2
sed -n 241,300p "$CC" >"$IN/2019-07-03.jsonl"
printf '{"id":"bad1","text":"caf\xe9 cr\xe8me br\xfbl\xe9e is a dessert."}\n{"id":"ok","text":"cut"\n{not json}\n{"id":"notext"}\n' >"$IN/2019-07-03-bad.jsonl"
head -c 3000 /bin/ls >"$IN/2019-07-03-binary.txt"; : >"$IN/2019-07-03-empty.jsonl"; : >"$IN/2019-07-03-empty.txt"
night 3
rm "$IN/2019-07-01b.jsonl"; head -400 "$TRAF" >"$IN/2019-07-04.jsonl"
PYTHONPATH=$REPO python -m pipeline run "$IN" -o "$OUT" --quiet >"$W/logs/4t.out" 2>"$W/logs/4t.err" & pid=$!; sleep 3; kill -TERM $pid; wait $pid
echo "night 4 ended by SIGTERM: exit $?, stderr: $(cat "$W/logs/4t.err"); .partial files: $(find "$OUT" -name '*.partial' | wc -l)"
night 4
sed -n 301,697p "$CC" >"$IN/2019-07-05.jsonl"; sed -n 401,800p "$TRAF" >"$IN/2019-07-05b.jsonl"
PYTHONPATH=$REPO python -m pipeline run "$IN" -o "$OUT" --quiet >/dev/null 2>&1 & pid=$!; sleep 3; kill -KILL $pid; wait $pid 2>/dev/null
echo "night 5 killed by SIGKILL: exit $?; outputs of the night on disk: $(ls "$OUT" | grep -c 2019-07-05); .partial files: $(find "$OUT" -name '*.partial' | wc -l)"
night 5
sed -n 801,1033p "$TRAF" >"$IN/2019-07-06.jsonl"
PYTHONPATH=$REPO python -m pipeline run "$IN" -o "$OUT" --quiet 2>"$W/logs/6a.err" & a=$!; sleep 0.3
cc run "$IN" -o "$OUT" --quiet 2>"$W/logs/6b.err"; echo "night 6, second run started at once: exit $?: $(cat "$W/logs/6b.err")"
wait $a; echo "night 6, first run: exit $?"
night 7
cc state info -o "$OUT"
