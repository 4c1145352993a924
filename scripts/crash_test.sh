#!/usr/bin/env bash
# Exactly-once under crashes: runs weir over generated files (three pipelines: tumbling,
# sliding and session windows), kills it with SIGKILL at random moments, restarts it each
# time, and when the input is finished compares every output file with the output of an
# uninterrupted run, as multisets of lines. Prints one summary line; exits non-zero on
# any difference. A fourth pipeline keeps every key open in one hour-long window, so
# that with many keys the state is large (1,000,000 keys: about 80 MB per full
# checkpoint) and checkpoints are incremental chains.
#
#   scripts/crash_test.sh [EVENTS] [KILLS] [KEYS]   (defaults: 3000000 events, 6 kills,
#                                                    2000 keys)
#
# With PARALLELISM="2 3 1" the crashed runs take their shard counts from the list in
# turn, so that every restart restores onto another shard count.
#
# With IN_CHECKPOINT=1 every kill waits, after its random delay, for a checkpoint being
# written (a checkpoint folder without its manifest) and lands while it is.
#
# Uses $CARGO_TARGET_DIR/release/weir (default target/; built if missing); WEIR_BIN overrides it.
set -euo pipefail
EVENTS=${1:-3000000}
KILLS=${2:-6}
KEYS=${3:-2000}
IN_CHECKPOINT=${IN_CHECKPOINT:-0}
read -r -a PARALLELISM <<< "${PARALLELISM:-2}"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${WEIR_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/weir}
if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --quiet)
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Input: 4 files (partitions), time advancing ~1 ms per event, disorder within 50 ms.
python3 - "$WORK/in" "$EVENTS" "$KEYS" <<'PY'
import os, random, sys
out, total, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out)
rnd = random.Random(42)
files = 4
for f in range(files):
    n = total // files
    base = 1_700_000_000_000
    lines = []
    for i in range(n):
        ts = base + i + rnd.randrange(3)
        lines.append((ts + rnd.randrange(51), '{"user":"u%d","ts":%d,"amount":%d}\n' % (rnd.randrange(keys), ts, rnd.randrange(1000))))
    lines.sort()
    with open(os.path.join(out, "part-%d.jsonl" % f), "w") as fh:
        fh.writelines(l for _, l in lines)
PY

config() {
  cat <<TOML
data_dir = "data"
[processing]
parallelism = 2
checkpoint_interval = 0.2
[admin]
enabled = false
[watermarks]
delay_seconds = 0.1
[[pipelines]]
id = "tumbling"
source = { type = "file", path = "$WORK/in/*.jsonl" }
event = { key = "user", time = "ts", value = "amount" }
window = { type = "tumbling", size_ms = 1000, allowed_lateness_ms = 200 }
aggregates = ["count", "sum", "min", "max", "p50"]
sinks = [ { type = "file", path = "out/tumbling.jsonl" } ]
[[pipelines]]
id = "sliding"
source = { type = "file", path = "$WORK/in/*.jsonl" }
event = { key = "user", time = "ts", value = "amount" }
window = { type = "sliding", size_ms = 2000, slide_ms = 500 }
aggregates = ["count", "sum", "avg"]
sinks = [ { type = "file", path = "out/sliding.jsonl" } ]
[[pipelines]]
id = "session"
source = { type = "file", path = "$WORK/in/*.jsonl" }
event = { key = "user", time = "ts", value = "amount" }
window = { type = "session", gap_ms = 400 }
aggregates = ["count", "max"]
sinks = [ { type = "file", path = "out/session.jsonl" } ]
[[pipelines]]
id = "hour"
source = { type = "file", path = "$WORK/in/*.jsonl" }
event = { key = "user", time = "ts", value = "amount" }
window = { type = "tumbling", size_ms = 3600000 }
aggregates = ["count", "sum"]
sinks = [ { type = "file", path = "out/hour.jsonl" } ]
TOML
}

mkdir -p "$WORK/clean" "$WORK/crash"
config > "$WORK/clean/weir.toml"
config > "$WORK/crash/weir.toml"

start=$(date +%s.%N)
(cd "$WORK/clean" && WEIR_LOG=warn "$BIN" run --config weir.toml)
clean_s=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$start" "$(date +%s.%N)")

# The kill moments are spread over the length of the uninterrupted run so that every kill
# lands before the input ends; if the input still ends first (a loaded machine), the
# crash run starts over from scratch with kills packed closer, up to 4 times.
scale=0.6
for attempt in 1 2 3 4; do
  rm -rf "$WORK/crash/data" "$WORK/crash/out"
  kills=0
  runs=0
  in_checkpoint=0
  cd "$WORK/crash"
  while :; do
    shards=${PARALLELISM[$((runs % ${#PARALLELISM[@]}))]}
    sed -i "s/^parallelism = .*/parallelism = $shards/" weir.toml
    runs=$((runs + 1))
    WEIR_LOG=warn "$BIN" run --config weir.toml &
    pid=$!
    if [ "$kills" -lt "$KILLS" ]; then
      sleep "$(python3 -c "import random, sys; print(random.uniform(0.3, 1.0) * float(sys.argv[3]) * float(sys.argv[1]) / int(sys.argv[2]))" "$clean_s" "$KILLS" "$scale")"
      if [ "$IN_CHECKPOINT" = 1 ]; then
        # Up to 30 s for a checkpoint folder that has no manifest yet.
        for _ in $(seq 3000); do
          writing=$(find data/checkpoints -mindepth 1 -maxdepth 1 -type d 2>/dev/null |
            while read -r d; do [ -e "$d/MANIFEST.json" ] || echo "$d"; done | head -1)
          [ -n "$writing" ] && break
          kill -0 "$pid" 2>/dev/null || break
          sleep 0.01
        done
        [ -n "${writing:-}" ] && in_checkpoint=$((in_checkpoint + 1))
      fi
      if kill -9 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
        kills=$((kills + 1))
        continue
      fi
    fi
    wait "$pid"
    break
  done
  [ "$kills" -ge "$KILLS" ] && break
  scale=$(python3 -c "import sys; print(float(sys.argv[1]) / 2)" "$scale")
done

status=0
summary=""
for name in tumbling sliding session hour; do
  clean=$(sort "$WORK/clean/out/$name.jsonl" | md5sum | cut -d' ' -f1)
  crash=$(sort "$WORK/crash/out/$name.jsonl" | md5sum | cut -d' ' -f1)
  lines=$(wc -l < "$WORK/clean/out/$name.jsonl")
  if [ "$clean" = "$crash" ]; then
    summary="$summary $name=ok($lines)"
  else
    status=1
    missing=$(comm -23 <(sort "$WORK/clean/out/$name.jsonl") <(sort "$WORK/crash/out/$name.jsonl") | wc -l)
    extra=$(comm -13 <(sort "$WORK/clean/out/$name.jsonl") <(sort "$WORK/crash/out/$name.jsonl") | wc -l)
    summary="$summary $name=DIFF(missing=$missing,extra=$extra)"
  fi
done
if [ "$kills" -lt "$KILLS" ]; then
  status=1
  summary="$summary only_${kills}_of_${KILLS}_kills_landed"
fi
if [ "$IN_CHECKPOINT" = 1 ] && [ "$in_checkpoint" -lt 1 ]; then
  status=1
  summary="$summary no_kill_landed_in_a_checkpoint"
fi
echo "crash_test: events=$EVENTS keys=$KEYS kills=$kills in_checkpoint=$in_checkpoint runs=$runs$summary $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
