#!/usr/bin/env bash
# Fuzz every target (or the ones named) for FUZZ_SECONDS (default 300) each, one libFuzzer
# process at a time (the machine is shared). New inputs go to fuzz/target/corpus/<target> (not
# checked in); crashes to fuzz/artifacts/<target>/. Results: docs/fuzzing.md.
#
# FUZZ_ENGINE=partial (default): a debug build where only the code under test carries
#   cargo-fuzz's coverage instrumentation (fuzz/rustc-cov.sh), in fuzz/target/cov; the other
#   dependencies are ordinary debug builds. A cold build costs about one `cargo build`.
# FUZZ_ENGINE=cargo-fuzz: `cargo fuzz build/run` as usual (release, everything instrumented;
#   a cold build takes far longer on two cores). cargo-fuzz is installed when missing, cached by
#   version outside the repo; RUSTC_BOOTSTRAP=1 stands in for a nightly toolchain.
set -euo pipefail
cd "$(dirname "$0")"

FUZZ_SECONDS=${FUZZ_SECONDS:-300}
FUZZ_ENGINE=${FUZZ_ENGINE:-partial}
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(csr_policy pem_bundle remote_ca_response name_constraints)
fi
flags=(-max_total_time="$FUZZ_SECONDS" -print_final_stats=1 -timeout=10 -rss_limit_mb=4096)

case "$FUZZ_ENGINE" in
  partial)
    export CARGO_TARGET_DIR="$PWD/target/cov"
    RUSTC_WRAPPER="$PWD/rustc-cov.sh" cargo build --bins
    run() { "$CARGO_TARGET_DIR/debug/$1" -artifact_prefix="artifacts/$1/" "target/corpus/$1" "corpus/$1" "${flags[@]}"; }
    ;;
  cargo-fuzz)
    version=0.13.1
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/pki-issuer/cargo-fuzz-$version"
    if [ ! -x "$cache/bin/cargo-fuzz" ]; then
      echo "installing cargo-fuzz $version into $cache"
      cargo install --locked cargo-fuzz --version "$version" --root "$cache"
    fi
    export PATH="$cache/bin:$PATH" RUSTC_BOOTSTRAP=1
    # No sanitizer: the code under test is safe Rust (aws-lc's C would not be instrumented).
    cargo fuzz build -s none
    run() { cargo fuzz run -s none "$1" "target/corpus/$1" "corpus/$1" -- "${flags[@]}"; }
    ;;
  *)
    echo "FUZZ_ENGINE must be partial or cargo-fuzz" >&2
    exit 2
    ;;
esac

mkdir -p target/logs
for t in "${targets[@]}"; do
  mkdir -p "target/corpus/$t" "artifacts/$t"
  log="target/logs/$t.log"
  echo "fuzzing $t for ${FUZZ_SECONDS}s (log: fuzz/$log)"
  if ! run "$t" >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "FAIL: $t found a crash (reproducer under fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  # The last status line has coverage and features; the final stats the executions.
  grep -E '^#[0-9]+' "$log" | tail -n 1
  grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added' "$log"
done
