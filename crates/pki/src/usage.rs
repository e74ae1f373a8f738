//! cert-manager key usages and their mapping to KeyUsage bits / EKU OIDs.

use std::fmt;

use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};

use super::error::PkiError;

/// A cert-manager usage (`spec.usages` of a Certificate/CertificateRequest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Usage {
    Signing,
    DigitalSignature,
    ContentCommitment,
    KeyEncipherment,
    KeyAgreement,
    DataEncipherment,
    CertSign,
    CrlSign,
    EncipherOnly,
    DecipherOnly,
    Any,
    ServerAuth,
    ClientAuth,
    CodeSigning,
    EmailProtection,
    SMime,
    IpsecEndSystem,
    IpsecTunnel,
    IpsecUser,
    Timestamping,
    OcspSigning,
    MicrosoftSgc,
    NetscapeSgc,
}

/// Bit positions in x509-parser's `KeyUsage::flags` order
/// (bit 0 = digitalSignature ... bit 8 = decipherOnly).
pub mod ku {
    #![allow(missing_docs)]
    pub const DIGITAL_SIGNATURE: u16 = 1 << 0;
    pub const CONTENT_COMMITMENT: u16 = 1 << 1;
    pub const KEY_ENCIPHERMENT: u16 = 1 << 2;
    pub const DATA_ENCIPHERMENT: u16 = 1 << 3;
    pub const KEY_AGREEMENT: u16 = 1 << 4;
    pub const KEY_CERT_SIGN: u16 = 1 << 5;
    pub const CRL_SIGN: u16 = 1 << 6;
    pub const ENCIPHER_ONLY: u16 = 1 << 7;
    pub const DECIPHER_ONLY: u16 = 1 << 8;
}

impl Usage {
    /// Every usage, in cert-manager's documentation order.
    pub const ALL: [Usage; 23] = [
        Usage::Signing,
        Usage::DigitalSignature,
        Usage::ContentCommitment,
        Usage::KeyEncipherment,
        Usage::KeyAgreement,
        Usage::DataEncipherment,
        Usage::CertSign,
        Usage::CrlSign,
        Usage::EncipherOnly,
        Usage::DecipherOnly,
        Usage::Any,
        Usage::ServerAuth,
        Usage::ClientAuth,
        Usage::CodeSigning,
        Usage::EmailProtection,
        Usage::SMime,
        Usage::IpsecEndSystem,
        Usage::IpsecTunnel,
        Usage::IpsecUser,
        Usage::Timestamping,
        Usage::OcspSigning,
        Usage::MicrosoftSgc,
        Usage::NetscapeSgc,
    ];

    /// Parses cert-manager's exact spelling (e.g. `"server auth"`).
    pub fn parse(s: &str) -> Result<Usage, PkiError> {
        Usage::ALL
            .into_iter()
            .find(|u| u.as_str() == s)
            .ok_or_else(|| PkiError::UnknownUsage(s.to_string()))
    }

    /// cert-manager's spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            Usage::Signing => "signing",
            Usage::DigitalSignature => "digital signature",
            Usage::ContentCommitment => "content commitment",
            Usage::KeyEncipherment => "key encipherment",
            Usage::KeyAgreement => "key agreement",
            Usage::DataEncipherment => "data encipherment",
            Usage::CertSign => "cert sign",
            Usage::CrlSign => "crl sign",
            Usage::EncipherOnly => "encipher only",
            Usage::DecipherOnly => "decipher only",
            Usage::Any => "any",
            Usage::ServerAuth => "server auth",
            Usage::ClientAuth => "client auth",
            Usage::CodeSigning => "code signing",
            Usage::EmailProtection => "email protection",
            Usage::SMime => "s/mime",
            Usage::IpsecEndSystem => "ipsec end system",
            Usage::IpsecTunnel => "ipsec tunnel",
            Usage::IpsecUser => "ipsec user",
            Usage::Timestamping => "timestamping",
            Usage::OcspSigning => "ocsp signing",
            Usage::MicrosoftSgc => "microsoft sgc",
            Usage::NetscapeSgc => "netscape sgc",
        }
    }

    /// Maps aliases to one representative: `signing` → `digital signature`,
    /// `s/mime` → `email protection` (they produce identical extensions).
    pub fn canonical(self) -> Usage {
        match self {
            Usage::Signing => Usage::DigitalSignature,
            Usage::SMime => Usage::EmailProtection,
            u => u,
        }
    }

    /// KeyUsage bit (see [`ku`]) if this is a KeyUsage usage.
    pub fn key_usage_bit(&self) -> Option<u16> {
        Some(match self.canonical() {
            Usage::DigitalSignature => ku::DIGITAL_SIGNATURE,
            Usage::ContentCommitment => ku::CONTENT_COMMITMENT,
            Usage::KeyEncipherment => ku::KEY_ENCIPHERMENT,
            Usage::KeyAgreement => ku::KEY_AGREEMENT,
            Usage::DataEncipherment => ku::DATA_ENCIPHERMENT,
            Usage::CertSign => ku::KEY_CERT_SIGN,
            Usage::CrlSign => ku::CRL_SIGN,
            Usage::EncipherOnly => ku::ENCIPHER_ONLY,
            Usage::DecipherOnly => ku::DECIPHER_ONLY,
            _ => return None,
        })
    }

    /// Extended key usage OID arcs if this is an EKU usage.
    pub fn eku_oid(&self) -> Option<&'static [u64]> {
        Some(match self.canonical() {
            Usage::Any => &[2, 5, 29, 37, 0],
            Usage::ServerAuth => &[1, 3, 6, 1, 5, 5, 7, 3, 1],
            Usage::ClientAuth => &[1, 3, 6, 1, 5, 5, 7, 3, 2],
            Usage::CodeSigning => &[1, 3, 6, 1, 5, 5, 7, 3, 3],
            Usage::EmailProtection => &[1, 3, 6, 1, 5, 5, 7, 3, 4],
            Usage::IpsecEndSystem => &[1, 3, 6, 1, 5, 5, 7, 3, 5],
            Usage::IpsecTunnel => &[1, 3, 6, 1, 5, 5, 7, 3, 6],
            Usage::IpsecUser => &[1, 3, 6, 1, 5, 5, 7, 3, 7],
            Usage::Timestamping => &[1, 3, 6, 1, 5, 5, 7, 3, 8],
            Usage::OcspSigning => &[1, 3, 6, 1, 5, 5, 7, 3, 9],
            Usage::MicrosoftSgc => &[1, 3, 6, 1, 4, 1, 311, 10, 3, 3],
            Usage::NetscapeSgc => &[2, 16, 840, 1, 113730, 4, 1],
            _ => return None,
        })
    }

    /// The rcgen KeyUsage purpose, if this is a KeyUsage usage.
    pub fn to_rcgen_key_usage(&self) -> Option<KeyUsagePurpose> {
        Some(match self.canonical() {
            Usage::DigitalSignature => KeyUsagePurpose::DigitalSignature,
            Usage::ContentCommitment => KeyUsagePurpose::ContentCommitment,
            Usage::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
            Usage::KeyAgreement => KeyUsagePurpose::KeyAgreement,
            Usage::DataEncipherment => KeyUsagePurpose::DataEncipherment,
            Usage::CertSign => KeyUsagePurpose::KeyCertSign,
            Usage::CrlSign => KeyUsagePurpose::CrlSign,
            Usage::EncipherOnly => KeyUsagePurpose::EncipherOnly,
            Usage::DecipherOnly => KeyUsagePurpose::DecipherOnly,
            _ => return None,
        })
    }

    /// The rcgen EKU purpose, if this is an EKU usage.
    pub fn to_rcgen_eku(&self) -> Option<ExtendedKeyUsagePurpose> {
        Some(match self.canonical() {
            Usage::Any => ExtendedKeyUsagePurpose::Any,
            Usage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            Usage::CodeSigning => ExtendedKeyUsagePurpose::CodeSigning,
            Usage::EmailProtection => ExtendedKeyUsagePurpose::EmailProtection,
            Usage::Timestamping => ExtendedKeyUsagePurpose::TimeStamping,
            Usage::OcspSigning => ExtendedKeyUsagePurpose::OcspSigning,
            u => ExtendedKeyUsagePurpose::Other(u.eku_oid()?.to_vec()),
        })
    }

    /// The usage for a dotted EKU OID, if cert-manager knows it.
    pub fn from_eku_oid(dotted: &str) -> Option<Usage> {
        Usage::ALL
            .into_iter()
            .filter(|u| *u == u.canonical())
            .find(|u| u.eku_oid().map(oid_string).as_deref() == Some(dotted))
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// cert-manager's default when a request lists no usages.
pub fn default_usages() -> Vec<Usage> {
    vec![Usage::DigitalSignature, Usage::KeyEncipherment]
}

/// `usages`, or the cert-manager defaults when empty.
pub fn effective_usages(usages: &[Usage]) -> Vec<Usage> {
    if usages.is_empty() {
        default_usages()
    } else {
        usages.to_vec()
    }
}

/// Combined KeyUsage flags (see [`ku`]).
pub fn key_usage_flags(usages: &[Usage]) -> u16 {
    usages
        .iter()
        .filter_map(Usage::key_usage_bit)
        .fold(0, |a, b| a | b)
}

/// Sorted, de-duplicated dotted EKU OIDs.
pub fn eku_oids(usages: &[Usage]) -> Vec<String> {
    let mut v: Vec<String> = usages
        .iter()
        .filter_map(|u| u.eku_oid())
        .map(oid_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Usages named by KeyUsage flags (canonical spellings).
pub fn usages_from_key_usage_flags(flags: u16) -> Vec<Usage> {
    Usage::ALL
        .into_iter()
        .filter(|u| *u == u.canonical())
        .filter(|u| u.key_usage_bit().is_some_and(|b| flags & b != 0))
        .collect()
}

/// Dotted-decimal rendering of OID arcs.
pub fn oid_string(arcs: &[u64]) -> String {
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_roundtrip_all_spellings() {
        for u in Usage::ALL {
            assert_eq!(Usage::parse(u.as_str()).unwrap(), u);
            assert!(u.key_usage_bit().is_some() ^ u.eku_oid().is_some(), "{u}");
        }
        assert_eq!(Usage::parse("server auth").unwrap(), Usage::ServerAuth);
        assert_eq!(
            Usage::parse("Server Auth"),
            Err(PkiError::UnknownUsage("Server Auth".into()))
        );
    }

    #[test]
    fn aliases_and_mappings() {
        assert_eq!(Usage::Signing.key_usage_bit(), Some(ku::DIGITAL_SIGNATURE));
        assert_eq!(Usage::SMime.eku_oid(), Usage::EmailProtection.eku_oid());
        assert_eq!(
            key_usage_flags(&default_usages()),
            ku::DIGITAL_SIGNATURE | ku::KEY_ENCIPHERMENT
        );
        assert_eq!(
            eku_oids(&[Usage::ClientAuth, Usage::ServerAuth, Usage::ServerAuth]),
            vec![
                "1.3.6.1.5.5.7.3.1".to_string(),
                "1.3.6.1.5.5.7.3.2".to_string()
            ]
        );
        assert_eq!(
            Usage::from_eku_oid("1.3.6.1.4.1.311.10.3.3"),
            Some(Usage::MicrosoftSgc)
        );
        assert_eq!(
            Usage::from_eku_oid("1.3.6.1.5.5.7.3.4"),
            Some(Usage::EmailProtection)
        );
        assert_eq!(
            usages_from_key_usage_flags(ku::KEY_CERT_SIGN | ku::CRL_SIGN),
            vec![Usage::CertSign, Usage::CrlSign]
        );
        assert_eq!(effective_usages(&[]), default_usages());
    }
}
