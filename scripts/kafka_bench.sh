#!/usr/bin/env bash
# Kafka → weir → Kafka throughput (tumbling windows, 10,000 keys) with 1 and 2 shards,
# beside the same events from a file source, and the latency from event append to a
# committed result at a given rate. Starts its own Kafka node (scripts/kafka.sh).
#
#   scripts/kafka_bench.sh [EVENTS] [RUNS] [LATENCY_RATE]
#
# The latency run uses one shard and LATENCY_CHECKPOINT_INTERVAL seconds (default 1).
#
# Prints one line per run: `source=kafka|file shards=N events=… seconds=… events_per_s=…`
# (seconds from "weir running" to "weir stopped" in weir's log: reading, windowing,
# writing through Kafka transactions and the final commit), and, when LATENCY_RATE is
# given, one `kafka_bench latency` line (p50/p99 of commit-visible minus window end).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
events="${1:-2000000}"
runs="${2:-3}"
rate="${3:-}"
work="$(mktemp -d /tmp/weir-kafka-bench.XXXXXX)"
trap 'bash scripts/kafka.sh stop "$work/kafka" >/dev/null 2>&1 || true' EXIT
cargo build --release --quiet
cargo build --release --quiet --example kafka_bench
bench=target/release/examples/kafka_bench
line="$(bash scripts/kafka.sh start "$work/kafka" --topics "in:4,lat-in:4,lat-out:4")"
bootstrap="$(echo "$line" | sed -n 's/.*bootstrap=\([^ ]*\).*/\1/p')"
echo "# $line" >&2
"$bench" produce "$bootstrap" in "$events" 10000 "$work/events.jsonl" >&2

seconds_of() { # weir's log → seconds from "weir running" to "weir stopped"
    python3 - "$1" <<'PY'
import re, sys, datetime
t = {}
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z.*weir (running|stopped)", line)
    if m:
        t[m.group(2)] = datetime.datetime.fromisoformat(m.group(1))
print(f"{(t['stopped'] - t['running']).total_seconds():.3f}")
PY
}

run() { # source shards n
    local source="$1" shards="$2" n="$3" dir="$work/run-$1-$2-$3"
    mkdir -p "$dir"
    bash scripts/kafka.sh tool kafka-topics --bootstrap-server "$bootstrap" --create \
        --topic "out-$source-$shards-$n" --partitions 4 >/dev/null
    local src
    if [[ "$source" == kafka ]]; then
        src="{ type = \"kafka\", bootstrap = \"$bootstrap\", topic = \"in\", bounded = true }"
    else
        src="{ type = \"file\", path = \"$work/events.jsonl\" }"
    fi
    cat >"$dir/weir.toml" <<TOML
app_name = "bench-$source-$shards-$n"
data_dir = "data"
[runtime]
cores = [$(seq -s, 0 $((shards - 1)))]
[processing]
checkpoint_interval = 1
[admin]
enabled = false
[[pipelines]]
id = "p"
source = $src
event = { key = "user", time = "ts", value = "amount" }
window = { type = "tumbling", size_ms = 1000 }
aggregates = ["count", "sum"]
watermark = { delay_ms = 100 }
sinks = [{ type = "kafka", bootstrap = "$bootstrap", topic = "out-$source-$shards-$n" }]
TOML
    (cd "$dir" && WEIR_LOG=info "$root/target/release/weir" run --config weir.toml 2>weir.log)
    local s
    s="$(seconds_of "$dir/weir.log")"
    echo "source=$source shards=$shards events=$events seconds=$s events_per_s=$(python3 -c "print(round($events/$s))")"
}

for n in $(seq 1 "$runs"); do
    for shards in 1 2; do
        run kafka "$shards" "$n"
        run file "$shards" "$n"
    done
done

if [[ -n "$rate" ]]; then
    dir="$work/latency"
    mkdir -p "$dir"
    cat >"$dir/weir.toml" <<TOML
app_name = "bench-latency"
data_dir = "data"
[runtime]
cores = [0]
[processing]
checkpoint_interval = ${LATENCY_CHECKPOINT_INTERVAL:-1}
[admin]
enabled = false
[[pipelines]]
id = "p"
source = { type = "kafka", bootstrap = "$bootstrap", topic = "lat-in", start = "latest" }
event = { key = "user", time = "ts", value = "amount" }
window = { type = "tumbling", size_ms = 1000 }
aggregates = ["count", "sum"]
watermark = { delay_ms = 0, idle_timeout_ms = 1000 }
sinks = [{ type = "kafka", bootstrap = "$bootstrap", topic = "lat-out" }]
TOML
    pushd "$dir" >/dev/null
    WEIR_LOG=warn "$root/target/release/weir" run --config weir.toml 2>weir.log &
    weir_pid=$!
    popd >/dev/null
    sleep 3
    "$bench" latency "$bootstrap" lat-in lat-out "$rate" 30 10000
    kill -TERM "$weir_pid"
    wait "$weir_pid" || true
fi
