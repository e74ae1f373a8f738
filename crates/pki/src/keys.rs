//! Signer private keys and public-key classification.

use std::fmt;

use rcgen::{KeyPair, PublicKeyData};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::error::PkiError;

/// Public key algorithm families the issuer understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA (rsaEncryption).
    Rsa,
    /// ECDSA on a NIST curve (P-256, P-384, P-521).
    Ecdsa,
    /// Ed25519.
    Ed25519,
}

impl KeyAlgorithm {
    /// Display name used in messages and policies ("RSA", "ECDSA", "Ed25519").
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa => "RSA",
            KeyAlgorithm::Ecdsa => "ECDSA",
            KeyAlgorithm::Ed25519 => "Ed25519",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Algorithm and size of a public key. ECDSA size is the curve size
/// (256/384/521); Ed25519 is 256.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyInfo {
    /// Key algorithm.
    pub algorithm: KeyAlgorithm,
    /// Key size in bits.
    pub size_bits: u32,
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_RSA_PSS: &str = "1.2.840.113549.1.1.10";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_ED448: &str = "1.3.101.113";
const OID_DSA: &str = "1.2.840.10040.4.1";

/// Classifies a DER SubjectPublicKeyInfo. Rejects DSA, RSA-PSS-only keys,
/// Ed448 and every EC curve other than P-256/P-384/P-521 (e.g. P-192,
/// secp256k1, Brainpool) with [`PkiError::UnsupportedKeyAlgorithm`].
pub fn key_info_from_spki(spki_der: &[u8]) -> Result<KeyInfo, PkiError> {
    let (rest, spki) = SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| PkiError::UnsupportedKeyAlgorithm(format!("unparseable public key: {e}")))?;
    if !rest.is_empty() {
        return Err(PkiError::UnsupportedKeyAlgorithm(
            "trailing data after public key".into(),
        ));
    }
    spki_key_info(&spki)
}

pub(crate) fn spki_key_info(spki: &SubjectPublicKeyInfo<'_>) -> Result<KeyInfo, PkiError> {
    let alg = spki.algorithm.algorithm.to_id_string();
    let key = &spki.subject_public_key.data;
    match alg.as_str() {
        OID_RSA => {
            let (_, rsa) = x509_parser::public_key::RSAPublicKey::from_der(key).map_err(|_| {
                PkiError::UnsupportedKeyAlgorithm("malformed RSA public key".into())
            })?;
            let modulus: &[u8] = {
                let skip = rsa.modulus.iter().take_while(|b| **b == 0).count();
                &rsa.modulus[skip..]
            };
            let bits = match modulus.first() {
                Some(b) => modulus.len() as u32 * 8 - b.leading_zeros(),
                None => 0,
            };
            Ok(KeyInfo {
                algorithm: KeyAlgorithm::Rsa,
                size_bits: bits,
            })
        }
        OID_EC => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .ok_or_else(|| {
                    PkiError::UnsupportedKeyAlgorithm("EC key without a named curve".into())
                })?;
            let (bits, point_len) = match curve.as_str() {
                "1.2.840.10045.3.1.7" => (256, 65),
                "1.3.132.0.34" => (384, 97),
                "1.3.132.0.35" => (521, 133),
                other => {
                    let name = match other {
                        "1.2.840.10045.3.1.1" => "P-192 (prime192v1)",
                        "1.3.132.0.33" => "P-224 (secp224r1)",
                        "1.3.132.0.10" => "secp256k1",
                        _ => "unknown",
                    };
                    return Err(PkiError::UnsupportedKeyAlgorithm(format!(
                        "ECDSA curve {name} ({other}) is not supported; use P-256, P-384 or P-521"
                    )));
                }
            };
            if key.len() != point_len || key[0] != 4 {
                return Err(PkiError::UnsupportedKeyAlgorithm(
                    "EC public key must be an uncompressed point on its curve".into(),
                ));
            }
            Ok(KeyInfo {
                algorithm: KeyAlgorithm::Ecdsa,
                size_bits: bits,
            })
        }
        OID_ED25519 => {
            if key.len() != 32 {
                return Err(PkiError::UnsupportedKeyAlgorithm(
                    "malformed Ed25519 public key".into(),
                ));
            }
            Ok(KeyInfo {
                algorithm: KeyAlgorithm::Ed25519,
                size_bits: 256,
            })
        }
        OID_DSA => Err(PkiError::UnsupportedKeyAlgorithm(
            "DSA keys are not supported".into(),
        )),
        OID_RSA_PSS => Err(PkiError::UnsupportedKeyAlgorithm(
            "RSA-PSS-only (id-RSASSA-PSS) keys are not supported; use rsaEncryption keys".into(),
        )),
        OID_ED448 => Err(PkiError::UnsupportedKeyAlgorithm(
            "Ed448 keys are not supported".into(),
        )),
        other => Err(PkiError::UnsupportedKeyAlgorithm(format!(
            "public key algorithm {other} is not supported"
        ))),
    }
}

/// A CA signing key (the issuer's `tls.key`). Its `Debug` output is redacted.
pub struct SignerKey {
    pub(crate) key: KeyPair,
    info: KeyInfo,
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerKey")
            .field("algorithm", &self.info.algorithm)
            .field("size_bits", &self.info.size_bits)
            .field("private_key", &crate::redacted::Redacted(()))
            .finish()
    }
}

impl SignerKey {
    /// Loads a PEM private key: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE
    /// KEY`) or SEC1 (`EC PRIVATE KEY`); other blocks such as `EC PARAMETERS`
    /// are skipped. Supported: ECDSA P-256/P-384, RSA 2048–4096, Ed25519.
    pub fn from_pem(pem_str: &str) -> Result<SignerKey, PkiError> {
        let blocks =
            pem::parse_many(pem_str).map_err(|_| PkiError::InvalidKey("not valid PEM".into()))?;
        let mut found = None;
        for block in &blocks {
            let der = block.contents().to_vec();
            let key = match block.tag() {
                "PRIVATE KEY" => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
                "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(der)),
                "EC PRIVATE KEY" => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(der)),
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(PkiError::InvalidKey(
                        "encrypted private keys are not supported".into(),
                    ))
                }
                _ => continue,
            };
            if found.is_some() {
                return Err(PkiError::InvalidKey(
                    "more than one private key PEM block".into(),
                ));
            }
            found = Some(key);
        }
        let key = found.ok_or_else(|| {
            PkiError::InvalidKey(
                "no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY PEM block found".into(),
            )
        })?;
        let key = KeyPair::try_from(&key).map_err(|_| {
            PkiError::InvalidKey(
                "unsupported or malformed private key (expected ECDSA P-256/P-384, RSA or Ed25519)"
                    .into(),
            )
        })?;
        let info = key_info_from_spki(&key.subject_public_key_info())?;
        let ok = match info.algorithm {
            KeyAlgorithm::Rsa => (2048..=4096).contains(&info.size_bits),
            KeyAlgorithm::Ecdsa => matches!(info.size_bits, 256 | 384),
            KeyAlgorithm::Ed25519 => true,
        };
        if !ok {
            return Err(PkiError::InvalidKey(format!(
                "{} {}-bit signer keys are not supported (use ECDSA P-256/P-384, RSA 2048-4096 or Ed25519)",
                info.algorithm, info.size_bits
            )));
        }
        Ok(SignerKey { key, info })
    }

    /// The key's SubjectPublicKeyInfo in DER.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.subject_public_key_info()
    }

    /// Algorithm and size of the key.
    pub fn info(&self) -> KeyInfo {
        self.info
    }
}

/// The in-memory key signs leaves through rcgen's traits, like any other CA key.
impl PublicKeyData for SignerKey {
    fn der_bytes(&self) -> &[u8] {
        self.key.der_bytes()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.key.algorithm()
    }
}

impl rcgen::SigningKey for SignerKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.key.sign(msg)
    }
}

/// Verifies `signature` over `data` made by the key in `spki` using the
/// X.509 signature algorithm `sig_alg`. Uses x509-parser (aws-lc-rs) and adds
/// the ECDSA combinations it lacks (P-521, SHA-512).
pub(crate) fn verify_signature(
    spki: &SubjectPublicKeyInfo<'_>,
    sig_alg: &x509_parser::x509::AlgorithmIdentifier<'_>,
    signature: &[u8],
    data: &[u8],
) -> bool {
    use aws_lc_rs::signature as sig;
    let bits = x509_parser::der_parser::asn1_rs::BitString::new(0, signature);
    match x509_parser::verify::verify_signature(spki, sig_alg, &bits, data) {
        Ok(()) => true,
        Err(x509_parser::error::X509Error::SignatureUnsupportedAlgorithm) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            let hash = match sig_alg.algorithm.to_id_string().as_str() {
                "1.2.840.10045.4.3.2" => 256,
                "1.2.840.10045.4.3.3" => 384,
                "1.2.840.10045.4.3.4" => 512,
                _ => return false,
            };
            let alg: &dyn sig::VerificationAlgorithm = match (curve.as_str(), hash) {
                ("1.2.840.10045.3.1.7", 512) => &sig::ECDSA_P256_SHA512_ASN1,
                ("1.3.132.0.34", 512) => &sig::ECDSA_P384_SHA512_ASN1,
                ("1.3.132.0.35", 256) => &sig::ECDSA_P521_SHA256_ASN1,
                ("1.3.132.0.35", 384) => &sig::ECDSA_P521_SHA384_ASN1,
                ("1.3.132.0.35", 512) => &sig::ECDSA_P521_SHA512_ASN1,
                _ => return false,
            };
            sig::UnparsedPublicKey::new(alg, &spki.subject_public_key.data)
                .verify(data, signature)
                .is_ok()
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{self, KeyKind};

    #[test]
    fn loads_all_formats_and_kinds() {
        for kind in KeyKind::ALL {
            let kp = testutil::key(kind);
            for (fmt, pem) in testutil::key_pems(kind, &kp) {
                let sk =
                    SignerKey::from_pem(&pem).unwrap_or_else(|e| panic!("{kind:?} {fmt}: {e}"));
                assert_eq!(
                    sk.public_key_der(),
                    kp.subject_public_key_info(),
                    "{kind:?} {fmt}"
                );
                assert_eq!(sk.info(), kind.info());
            }
        }
    }

    #[test]
    fn debug_is_redacted_and_errors_do_not_leak() {
        let kp = testutil::key(KeyKind::P256);
        let pem = kp.serialize_pem();
        let sk = SignerKey::from_pem(&pem).unwrap();
        let dbg = format!("{sk:?}");
        assert!(dbg.contains("redacted"));
        let body: String = pem.lines().nth(1).unwrap().chars().take(20).collect();
        assert!(!dbg.contains(&body));
        // Corrupt key: error must not echo key bytes.
        let bad = pem.replace(&body, "AAAAAAAAAAAAAAAAAAAA");
        let err = SignerKey::from_pem(&bad).unwrap_err().to_string();
        assert!(!err.contains("AAAA"), "{err}");
    }

    #[test]
    fn rejects_garbage_and_encrypted() {
        assert!(matches!(
            SignerKey::from_pem("hello"),
            Err(PkiError::InvalidKey(_))
        ));
        let enc =
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let err = SignerKey::from_pem(enc).unwrap_err();
        assert!(err.to_string().contains("encrypted"), "{err}");
        let cert = testutil::root(KeyKind::P256, "Root").pem;
        assert!(matches!(
            SignerKey::from_pem(&cert),
            Err(PkiError::InvalidKey(_))
        ));
    }

    #[test]
    fn classifies_spki() {
        let p384 = testutil::key(KeyKind::P384);
        assert_eq!(
            key_info_from_spki(&p384.subject_public_key_info()).unwrap(),
            KeyInfo {
                algorithm: KeyAlgorithm::Ecdsa,
                size_bits: 384
            }
        );
        let rsa = testutil::key(KeyKind::Rsa4096);
        assert_eq!(
            key_info_from_spki(&rsa.subject_public_key_info())
                .unwrap()
                .size_bits,
            4096
        );
        assert!(key_info_from_spki(b"\x30\x00").is_err());
    }
}
