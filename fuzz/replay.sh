#!/usr/bin/env bash
# Build the fuzz targets without coverage instrumentation (plain cargo, stable, sharing the
# workspace's target directory so its dependencies are reused) and run every checked-in corpus
# file through them once: the targets keep compiling, and every seed and past finding stays
# fixed. Part of `make test`; `make fuzz` does the actual fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
CARGO_TARGET_DIR="$target_dir" cargo build --quiet --manifest-path fuzz/Cargo.toml --bins

failed=0
for dir in fuzz/corpus/*/; do
  t=$(basename "$dir")
  bin="$target_dir/debug/$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz replay: no target binary for corpus $dir" >&2
    exit 1
  fi
  files=("$dir"*)
  log=$(mktemp)
  # With file arguments libFuzzer runs each input once and exits non-zero on a failure.
  if "$bin" "${files[@]}" >"$log" 2>&1; then
    echo "fuzz replay: $t: ${#files[@]} inputs ok"
  else
    grep -E -B1 -A1 'panicked' "$log" | head -n 20 >&2 || tail -n 30 "$log" >&2
    echo "fuzz replay: $t: FAILED" >&2
    failed=1
  fi
  rm -f "$log"
done
exit "$failed"
