#![no_main]
//! See `pki_issuer_fuzz::remote_ca` for the input format and the invariants checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| pki_issuer_fuzz::remote_ca::run(data));
