#!/usr/bin/env bash
# Fuzz every target for FUZZ_SECONDS (default 300) each, one process at a time (the machine is
# shared). Installs cargo-fuzz when missing, cached by version outside the repo. New inputs go
# to fuzz/target/corpus/<target> (not checked in); crashes to fuzz/artifacts/<target>.
# Usage: fuzz/run.sh [target...]   (make fuzz)
set -euo pipefail
cd "$(dirname "$0")"

CARGO_FUZZ_VERSION=0.13.1
FUZZ_SECONDS=${FUZZ_SECONDS:-300}
cache="${XDG_CACHE_HOME:-$HOME/.cache}/pki-issuer/cargo-fuzz-$CARGO_FUZZ_VERSION"
if [ ! -x "$cache/bin/cargo-fuzz" ]; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION into $cache"
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$cache"
fi
export PATH="$cache/bin:$PATH"
# cargo-fuzz passes nightly-only flags; the machine has one stable toolchain.
export RUSTC_BOOTSTRAP=1

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(csr_policy pem_bundle remote_ca_response name_constraints)
fi

# No sanitizer: the code under test is safe Rust, and the C in aws-lc would not be instrumented.
cargo fuzz build -s none
mkdir -p target/logs
for t in "${targets[@]}"; do
  mkdir -p "target/corpus/$t"
  log="target/logs/$t.log"
  echo "fuzzing $t for ${FUZZ_SECONDS}s (log: fuzz/$log)"
  if ! cargo fuzz run -s none "$t" "target/corpus/$t" "corpus/$t" -- \
    -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096 \
    >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "FAIL: $t found a crash (reproducer under fuzz/artifacts/$t)" >&2
    exit 1
  fi
  # The last status line has the coverage; the final stats the executions.
  grep -E '^#[0-9]+' "$log" | tail -n 1
  grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added' "$log"
done
