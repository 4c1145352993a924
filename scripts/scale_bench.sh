#!/usr/bin/env bash
# Scale-out throughput: the same Kafka input read by 1 and by 2 weir instances of one
# application (`assignment = "group"`, one shard each), on this machine.
#
#   scripts/scale_bench.sh [EVENTS] [RUNS]
#
# Starts its own Kafka node (scripts/kafka.sh), fills a 6-partition topic with EVENTS
# events (10,000 keys, `examples/kafka_bench.rs produce`), then for each run and each
# instance count starts a fresh application (its own group and state topic) and times
# from the instances' start until every partition is read to its end, as their
# `GET /watermarks` says (`records_behind` 0 on all 6, from librdkafka's statistics,
# refreshed each second). Prints `instances=N events=… seconds=… events_per_s=…`.
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-3000000}"
runs="${2:-3}"
work="$(mktemp -d /tmp/weir-scale-bench.XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    bash scripts/kafka.sh stop "$work/kafka" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cargo build --release --quiet
cargo build --release --quiet --example kafka_bench
line="$(bash scripts/kafka.sh start "$work/kafka" --topics "in:6")"
bootstrap="$(echo "$line" | sed -n 's/.*bootstrap=\([^ ]*\).*/\1/p')"
echo "# $line" >&2
target/release/examples/kafka_bench produce "$bootstrap" in "$events" 10000 "$work/events.jsonl" >&2

caught_up() { # port... → 0 when the instances hold all 6 partitions, none behind
    python3 - "$@" <<'PY'
import json, sys, urllib.request
held = {}
for port in sys.argv[1:]:
    try:
        w = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/watermarks", timeout=2))
    except Exception:
        sys.exit(1)
    for p in w["pipelines"][0]["partitions"]:
        held[p["partition"]] = p.get("records_behind")
sys.exit(0 if len(held) == 6 and all(b == 0 for b in held.values()) else 1)
PY
}

for run in $(seq 1 "$runs"); do
    for n in 1 2; do
        app="bench-$run-$n"
        cat >"$work/$app.toml" <<TOML
app_name = "$app"
[processing]
parallelism = 1
checkpoint_interval = 1.0
[[pipelines]]
id = "p"
source = { type = "kafka", bootstrap = "$bootstrap", topic = "in", assignment = "group" }
event = { key = "user", time = "ts", value = "amount" }
window = { type = "tumbling", size_ms = 1000 }
aggregates = ["count", "sum"]
sinks = [{ type = "kafka", bootstrap = "$bootstrap", topic = "out-$app", transaction_timeout_ms = 10000 }]
TOML
        bash scripts/kafka.sh tool kafka-topics --bootstrap-server "$bootstrap" --create \
            --topic "out-$app" --partitions 3 --replication-factor 1 >/dev/null
        ports=()
        pids=()
        start=$(date +%s.%N)
        for i in $(seq 1 "$n"); do
            port=$((19000 + 10 * i))
            ports+=("$port")
            target/release/weir run --config "$work/$app.toml" --instance "i$i" \
                --data-dir "$work/$app-$i" --http "127.0.0.1:$port" \
                --metrics "127.0.0.1:$((port + 1))" 2>"$work/$app-$i.log" &
            pids+=($!)
        done
        until caught_up "${ports[@]}"; do sleep 0.2; done
        end=$(date +%s.%N)
        for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
        pids=()
        python3 -c "s=$end-$start; print(f'instances=$n events=$events seconds={s:.2f} events_per_s={$events/s:.0f}')"
    done
done
