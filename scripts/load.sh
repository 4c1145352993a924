#!/usr/bin/env bash
# Throughput test of the TCP source. Starts weir on scripts/tcp.toml in a temporary
# folder (or uses a running engine given with --target), drives it with `weir load`,
# scrapes /metrics when it answers, stops the engine it started, and prints a summary.
#
#   scripts/load.sh [--shards N] [--fsync never|group|always] [--target HOST:PORT]
#                   [--metrics HOST:PORT] [weir load options ...]
#
#   scripts/load.sh                                   # 1 shard, 4 connections, 10 s flat out
#   scripts/load.sh --shards 2 --connections 8 --total 20000000
#   scripts/load.sh --rate 500000 --duration 10       # latency at a fixed rate
#   scripts/load.sh --target 10.0.0.5:7070 --metrics 10.0.0.5:9090 --duration 30
#
# weir load options: --connections N --rate EV_PER_S (0 = flat out) --total N | --duration S
# --keys K --disorder-ms D (see `weir load --help`). Uses $CARGO_TARGET_DIR/release/weir
# (default target/; built if missing); WEIR_BIN overrides it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${WEIR_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/weir}
SHARDS=1
FSYNC=""
TARGET=""
METRICS=""
LOAD_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --shards) SHARDS=$2; shift 2 ;;
    --fsync) FSYNC=$2; shift 2 ;;
    --target) TARGET=$2; shift 2 ;;
    --metrics) METRICS=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) LOAD_ARGS+=("$1"); shift ;;
  esac
done
case " ${LOAD_ARGS[*]-} " in
  *" --total "*|*" --duration "*) ;;
  *) LOAD_ARGS+=(--duration 10) ;;
esac
case " ${LOAD_ARGS[*]-} " in
  *" --connections "*) ;;
  *) LOAD_ARGS+=(--connections 4) ;;
esac
if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --quiet)
fi

listening() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

WEIR_PID=""
WORK=""
cleanup() {
  if [ -n "$WEIR_PID" ] && kill -0 "$WEIR_PID" 2>/dev/null; then
    kill -TERM "$WEIR_PID" 2>/dev/null || true
    wait "$WEIR_PID" 2>/dev/null || true
  fi
  [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "$TARGET" ]; then
  TARGET=127.0.0.1:7070
  METRICS=${METRICS:-127.0.0.1:9091}
  if listening "$TARGET"; then
    echo "load.sh: something already listens on $TARGET; stop it or pass --target" >&2
    exit 1
  fi
  WORK=$(mktemp -d)
  sed -e "s/^parallelism = .*/parallelism = $SHARDS/" \
      ${FSYNC:+-e "s/^fsync = .*/fsync = \"$FSYNC\"/"} \
      "$ROOT/scripts/tcp.toml" > "$WORK/weir.toml"
  (cd "$WORK" && WEIR_LOG=${WEIR_LOG:-warn} exec "$BIN" run --config weir.toml) &
  WEIR_PID=$!
  for _ in $(seq 200); do
    listening "$TARGET" && break
    kill -0 "$WEIR_PID" 2>/dev/null || { echo "load.sh: weir exited at start" >&2; exit 1; }
    sleep 0.05
  done
  listening "$TARGET" || { echo "load.sh: weir does not listen on $TARGET" >&2; exit 1; }
fi

SUMMARY=$("$BIN" load --target "$TARGET" "${LOAD_ARGS[@]}")
echo "$SUMMARY"

# Sum of one metric over its label sets, from a /metrics page.
metric() { awk -v m="$1" -v f="${3:-%.0f}" '$1 == m || index($1, m "{") == 1 { s += $NF } END { printf f, s }' <<<"$2"; }
EXTRA=""
if [ -n "$METRICS" ] && command -v curl >/dev/null; then
  sleep 1
  if PAGE=$(curl -sf --max-time 5 "http://$METRICS/metrics"); then
    EXTRA=" processed=$(metric stream_events_processed_total "$PAGE")"
    EXTRA+=" invalid=$(metric stream_events_invalid_total "$PAGE")"
    EXTRA+=" dropped_late=$(metric stream_events_dropped_late_total "$PAGE")"
    EXTRA+=" deduplicated=$(metric stream_events_deduplicated_total "$PAGE")"
    EXTRA+=" log_bytes=$(metric stream_log_bytes "$PAGE")"
    EXTRA+=" shard_busy_s=$(metric stream_shard_busy_seconds_total "$PAGE" %.2f)"
  fi
fi
echo "load.sh: target=$TARGET${WEIR_PID:+ shards=$SHARDS fsync=${FSYNC:-group}} $SUMMARY$EXTRA"
