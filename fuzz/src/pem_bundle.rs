//! Target `pem_bundle`: PEM text from Secrets and ConfigMaps — `tls.crt` (signer chain),
//! `tls.key` (signer key) and trust anchors — through `parse_pem_certs`, `SignerChain` (and its
//! size limits), `parse_trust_anchors`, `SignerKey`, `chain_constraints` and `check_signer`.
//!
//! Input: up to three parts separated by NUL bytes: `tls.crt`, `tls.key`, anchors (each read
//! as UTF-8, lossily, as the loader requires text).

use pki_issuer::pki::{
    cert_info, certs_to_pem, chain_constraints, check_signer, key_info_from_spki, parse_pem_certs,
    parse_trust_anchors, PkiError, SignerChain, SignerKey,
};
use pki_issuer::pki::{MAX_CHAIN_CERTS, MAX_CHAIN_PEM_BYTES};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The fixed "now" of the health check (the seed certificates are valid 2025–2045).
pub fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_893_456_000).unwrap() // 2030-01-01
}

/// Base64 lines of at least 16 characters in PEM text: key material a message must not echo.
fn body_lines(pem_text: &str) -> Vec<&str> {
    pem_text
        .lines()
        .map(str::trim)
        .filter(|l| l.len() >= 16 && !l.starts_with("-----") && !l.contains(':'))
        .collect()
}

/// The target.
pub fn run(data: &[u8]) {
    let mut parts = data.splitn(3, |b| *b == 0);
    let crt = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let key = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let anchors = String::from_utf8_lossy(parts.next().unwrap_or_default());

    let chain = check_bundle(&crt);
    let key = check_key(&key);
    let anchors = parse_trust_anchors(&anchors).ok();
    if let (Some(chain), Some(anchors)) = (chain, anchors) {
        check_health(&chain, key.as_ref(), &anchors);
    }
}

fn check_bundle(crt: &str) -> Option<SignerChain> {
    let parsed = parse_pem_certs(crt);
    let chain = SignerChain::from_pem(crt);
    if let Err(PkiError::ChainLimit(_)) = &chain {
        // Refused for its size alone: too many bytes, or parsed to too many certificates.
        assert!(
            crt.len() > MAX_CHAIN_PEM_BYTES
                || parsed.as_ref().is_ok_and(|d| d.len() > MAX_CHAIN_CERTS),
            "a chain within the limits was refused as too large"
        );
        return None;
    }
    assert_eq!(
        parsed.is_ok(),
        chain.is_ok(),
        "parse_pem_certs and SignerChain disagree"
    );
    let ders = parsed.ok()?;
    let chain = chain.unwrap();
    assert!(!ders.is_empty());
    assert_eq!(chain.all_der(), ders);
    for der in &ders {
        let info = cert_info(der).expect("a parsed certificate has status facts");
        assert_eq!(info.sha256_fingerprint.len(), 64);
    }
    // Round trip: our re-encoding (what status.ca gets) parses to the same certificates.
    let pem = certs_to_pem(&ders);
    assert_eq!(parse_pem_certs(&pem).as_ref(), Ok(&ders), "PEM round trip");
    let _ = chain.earliest_not_after();
    let _ = chain_constraints(&ders);
    Some(chain)
}

fn check_key(text: &str) -> Option<SignerKey> {
    let secret_lines = body_lines(text);
    match SignerKey::from_pem(text) {
        Ok(key) => {
            let spki = key.public_key_der();
            assert_eq!(key_info_from_spki(&spki), Ok(key.info()));
            let dbg = format!("{key:?}");
            assert!(dbg.contains("redacted"));
            for l in &secret_lines {
                assert!(!dbg.contains(l), "SignerKey Debug shows key material");
            }
            Some(key)
        }
        Err(e) => {
            let msg = e.to_string();
            for l in &secret_lines {
                assert!(!msg.contains(l), "key error echoes key material: {msg}");
            }
            None
        }
    }
}

fn check_health(chain: &SignerChain, key: Option<&SignerKey>, anchors: &[Vec<u8>]) {
    let now = now();
    let Ok(info) = check_signer(chain, key, anchors, now) else {
        return;
    };
    // Healthy ⇒ the signer is a CA valid now, holding the key, and the facts are its own.
    let (_, signer) = X509Certificate::from_der(&chain.signer_der).expect("signer parses");
    let bc = signer.basic_constraints().ok().flatten();
    assert!(bc.is_some_and(|b| b.value.ca), "healthy signer is not a CA");
    assert!(
        signer.validity().not_before.to_datetime() <= now
            && now <= signer.validity().not_after.to_datetime(),
        "healthy signer outside its validity"
    );
    if let Some(key) = key {
        let key_spki = key.public_key_der();
        let (_, ks) =
            x509_parser::x509::SubjectPublicKeyInfo::from_der(&key_spki).expect("key spki");
        assert_eq!(
            ks.subject_public_key.data,
            signer.public_key().subject_public_key.data,
            "healthy signer with another key"
        );
    }
    assert_eq!(Ok(info), cert_info(&chain.signer_der));
}
