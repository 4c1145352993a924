#!/usr/bin/env bash
# Exactly-once under crashes: runs weir over generated files (three pipelines: tumbling,
# sliding and session windows), kills it with SIGKILL at random moments, restarts it each
# time, and when the input is finished compares every output file with the output of an
# uninterrupted run, as multisets of lines. Prints one summary line; exits non-zero on
# any difference.
#
#   scripts/crash_test.sh [EVENTS] [KILLS]     (defaults: 3000000 events, 6 kills)
#
# Uses $CARGO_TARGET_DIR/release/weir (default target/; built if missing); WEIR_BIN overrides it.
set -euo pipefail
EVENTS=${1:-3000000}
KILLS=${2:-6}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${WEIR_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/weir}
if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --quiet)
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Input: 4 files (partitions), time advancing ~1 ms per event, disorder within 50 ms.
python3 - "$WORK/in" "$EVENTS" <<'PY'
import os, random, sys
out, total = sys.argv[1], int(sys.argv[2])
os.makedirs(out)
rnd = random.Random(42)
files = 4
for f in range(files):
    n = total // files
    base = 1_700_000_000_000
    lines = []
    for i in range(n):
        ts = base + i + rnd.randrange(3)
        lines.append((ts + rnd.randrange(51), '{"user":"u%d","ts":%d,"amount":%d}\n' % (rnd.randrange(2000), ts, rnd.randrange(1000))))
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
  cd "$WORK/crash"
  while :; do
    runs=$((runs + 1))
    WEIR_LOG=warn "$BIN" run --config weir.toml &
    pid=$!
    if [ "$kills" -lt "$KILLS" ]; then
      sleep "$(python3 -c "import random, sys; print(random.uniform(0.3, 1.0) * float(sys.argv[3]) * float(sys.argv[1]) / int(sys.argv[2]))" "$clean_s" "$KILLS" "$scale")"
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
for name in tumbling sliding session; do
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
echo "crash_test: events=$EVENTS kills=$kills runs=$runs$summary $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
