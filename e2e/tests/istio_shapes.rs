//! Requests shaped exactly as Istio makes them (facts from istio/istio
//! `security/pkg/pki/util/generate_csr.go` and `san.go`, written anew here): Go's
//! `x509.CreateCertificateRequest` over `pkix.Name{Organization: []string{""}}` (one RDN, `O` as
//! an empty PrintableString, no CN) and one **critical** subjectAltName extension built from
//! a comma-separated host list (IP → iPAddress, `spiffe://` → URI, anything else → dNSName),
//! signed with an RSA-2048 (`WORKLOAD_RSA_KEY_SIZE`) or ECDSA P-256 key.

use std::net::IpAddr;

use rcgen::{KeyPair, PublicKeyData, RsaKeySize, SigningKey};

use crate::fixtures::der;

/// The workload key types istio-agent uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IstioKey {
    /// RSA-2048 (the default).
    Rsa2048,
    /// ECDSA P-256 (`ECC_SIGNATURE_ALGORITHM=ECDSA`).
    P256,
}

impl IstioKey {
    /// A fresh key of this type.
    pub fn generate(self) -> KeyPair {
        match self {
            IstioKey::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
                    .expect("RSA-2048 key")
            }
            IstioKey::P256 => {
                KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key")
            }
        }
    }

    /// The AlgorithmIdentifier Go writes for the CSR's signature.
    fn signature_algorithm(self) -> Vec<u8> {
        match self {
            // sha256WithRSAEncryption, NULL parameters.
            IstioKey::Rsa2048 => der::seq(&[
                der::oid(&[1, 2, 840, 113549, 1, 1, 11]),
                der::tlv(0x05, &[]),
            ]),
            // ecdsa-with-SHA256, no parameters.
            IstioKey::P256 => der::seq(&[der::oid(&[1, 2, 840, 10045, 4, 3, 2])]),
        }
    }
}

/// The subject istio-agent and istiod's chiron write: `O=""` as an empty PrintableString.
pub const ISTIO_SUBJECT_DER: [u8; 13] = [
    0x30, 0x0b, 0x31, 0x09, 0x30, 0x07, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x13, 0x00,
];

/// The critical subjectAltName extension Istio builds from `hosts` ("a,b,c").
fn san_extension(hosts: &str) -> Vec<u8> {
    let names: Vec<Vec<u8>> = hosts
        .split(',')
        .map(|h| match h.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => der::tlv(0x87, &v4.octets()),
            Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => der::tlv(0x87, &v4.octets()),
                None => der::tlv(0x87, &v6.octets()),
            },
            Err(_) if h.starts_with("spiffe://") => der::tlv(0x86, h.as_bytes()),
            Err(_) => der::tlv(0x82, h.as_bytes()),
        })
        .collect();
    der::seq(&[
        der::oid(&[2, 5, 29, 17]),
        der::boolean(true),
        der::octets(&der::seq(&names)),
    ])
}

/// A PEM CSR for `hosts`, byte for byte what Istio's Go code produces for this key.
pub fn istio_csr(kind: IstioKey, key: &KeyPair, hosts: &str) -> String {
    let extension_request = der::seq(&[
        der::oid(&[1, 2, 840, 113549, 1, 9, 14]),
        der::set(&[der::seq(&[san_extension(hosts)])]),
    ]);
    let info = der::seq(&[
        der::tlv(0x02, &[0]),
        ISTIO_SUBJECT_DER.to_vec(),
        key.subject_public_key_info(),
        der::tlv(0xa0, &extension_request),
    ]);
    let signature = key.sign(&info).expect("sign CSR");
    let mut bits = vec![0u8];
    bits.extend(signature);
    let csr = der::seq(&[info, kind.signature_algorithm(), der::tlv(0x03, &bits)]);
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE REQUEST", csr),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// `openssl req -text -verify` of a CSR: (signature verified, text).
pub fn openssl_req_text(dir: &std::path::Path, csr_pem: &str) -> (bool, String) {
    let path = dir.join("istio.csr");
    std::fs::write(&path, csr_pem).expect("write CSR");
    let out = std::process::Command::new("openssl")
        .args(["req", "-noout", "-text", "-verify", "-in"])
        .arg(&path)
        .output()
        .expect("openssl (install the Debian package openssl)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
