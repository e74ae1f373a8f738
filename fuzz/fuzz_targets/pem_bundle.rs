#![no_main]
//! See `pki_issuer_fuzz::pem_bundle` for the input format and the invariants checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| pki_issuer_fuzz::pem_bundle::run(data));
