#!/usr/bin/env bash
# The coverage-guided fuzz targets of fuzz/ (libFuzzer through libfuzzer-sys), built on
# the stable toolchain with SanitizerCoverage and debug assertions (no sanitizer: those
# need a nightly compiler; Rust's own checks catch what the targets look for).
#
#   scripts/fuzz.sh build
#   scripts/fuzz.sh run TARGET SECONDS [libFuzzer options…]
#   scripts/fuzz.sh all SECONDS        every target in turn; stops at the first finding
#   scripts/fuzz.sh list
#
# Committed seeds are in fuzz/corpus/TARGET (read, never written); what a run learns
# goes to fuzz/target/corpus/TARGET, and a crashing input to fuzz/artifacts/TARGET/.
# Reproduce a finding with: fuzz/target/<host>/release/TARGET fuzz/artifacts/TARGET/crash-…
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
targets=(decode_json csv tcp_protocol config admin_request log_recovery checkpoint_load)
host=$(rustc -vV | sed -n 's/^host: //p')
bin="$root/fuzz/target/$host/release"

build() {
  # --target keeps these flags off build scripts and proc macros.
  RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares \
    -Cdebug-assertions -Coverflow-checks" \
    cargo build --release --locked --manifest-path "$root/fuzz/Cargo.toml" \
      --target "$host" --target-dir "$root/fuzz/target" --bins
}

run() {
  local target=$1 secs=$2
  shift 2
  local learned="$root/fuzz/target/corpus/$target" found="$root/fuzz/artifacts/$target"
  mkdir -p "$learned" "$found" "$root/fuzz/corpus/$target"
  echo "== fuzz $target for ${secs}s"
  "$bin/$target" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$found/" "$@" \
    "$learned" "$root/fuzz/corpus/$target"
}

case "${1:-}" in
  build) build ;;
  run) [[ $# -ge 3 ]] || { echo "usage: $0 run TARGET SECONDS" >&2; exit 2; }
       t=$2 s=$3; shift 3; run "$t" "$s" "$@" ;;
  all) [[ $# -ge 2 ]] || { echo "usage: $0 all SECONDS" >&2; exit 2; }
       for t in "${targets[@]}"; do run "$t" "$2"; done ;;
  list) printf '%s\n' "${targets[@]}" ;;
  *) echo "usage: $0 build | run TARGET SECONDS | all SECONDS | list" >&2; exit 2 ;;
esac
