#!/usr/bin/env bash
# RUSTC_WRAPPER for `make fuzz`: the same coverage instrumentation cargo-fuzz adds, but only to
# the code under test (pki-issuer, the targets, and the X.509/PEM parsers they drive), so the
# ~300 other dependencies build once, uninstrumented, in debug mode, like any other build.
set -euo pipefail
rustc=$1
shift
crate=
prev=
for a in "$@"; do
  if [ "$prev" = "--crate-name" ]; then crate=$a; fi
  prev=$a
done
case "$crate" in
  pki_issuer | pki_issuer_fuzz | csr_policy | pem_bundle | remote_ca_response | name_constraints | \
    x509_parser | der_parser | asn1_rs | pem)
    exec "$rustc" "$@" -Copt-level=1 -Cdebug-assertions -Coverflow-checks \
      -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
      -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
      -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares \
      -Cllvm-args=-sanitizer-coverage-stack-depth --cfg fuzzing
    ;;
esac
exec "$rustc" "$@"
