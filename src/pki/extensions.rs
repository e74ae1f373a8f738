//! Which X.509 extensions may appear in a CSR's extensionRequest and in an issued leaf.
//! Everything else, and any extension present twice, is refused.

use x509_parser::extensions::X509Extension;

use super::error::PkiError;

/// subjectAltName.
pub const SAN: &str = "2.5.29.17";
/// keyUsage.
pub const KEY_USAGE: &str = "2.5.29.15";
/// extendedKeyUsage.
pub const EXT_KEY_USAGE: &str = "2.5.29.37";
/// basicConstraints.
pub const BASIC_CONSTRAINTS: &str = "2.5.29.19";
/// subjectKeyIdentifier.
pub const SUBJECT_KEY_ID: &str = "2.5.29.14";
/// authorityKeyIdentifier.
pub const AUTHORITY_KEY_ID: &str = "2.5.29.35";
/// cRLDistributionPoints.
pub const CRL_DP: &str = "2.5.29.31";
/// authorityInfoAccess.
pub const AIA: &str = "1.3.6.1.5.5.7.1.1";
/// Certificate Transparency SCT list.
pub const SCT_LIST: &str = "1.3.6.1.4.1.11129.2.4.2";
/// nameConstraints (only on issued CA certificates).
pub const NAME_CONSTRAINTS: &str = "2.5.29.30";

/// Extensions a CSR may request. Requested values are never copied; they are refused
/// unless they agree with the request (see the policy checks).
pub const CSR_EXTENSIONS: &[&str] = &[
    SAN,
    KEY_USAGE,
    EXT_KEY_USAGE,
    BASIC_CONSTRAINTS,
    SUBJECT_KEY_ID,
];

/// Extensions an issued end-entity certificate may carry.
pub const LEAF_EXTENSIONS: &[&str] = &[
    SAN,
    KEY_USAGE,
    EXT_KEY_USAGE,
    BASIC_CONSTRAINTS,
    SUBJECT_KEY_ID,
    AUTHORITY_KEY_ID,
    CRL_DP,
    AIA,
    SCT_LIST,
];

/// Extensions an issued certificate may carry: [`LEAF_EXTENSIONS`], plus nameConstraints
/// on CA certificates.
pub fn issued_allowed(is_ca: bool) -> impl Fn(&str) -> bool {
    move |oid| LEAF_EXTENSIONS.contains(&oid) || (is_ca && oid == NAME_CONSTRAINTS)
}

fn name(oid: &str) -> &'static str {
    match oid {
        SAN => "subjectAltName",
        KEY_USAGE => "keyUsage",
        EXT_KEY_USAGE => "extendedKeyUsage",
        BASIC_CONSTRAINTS => "basicConstraints",
        SUBJECT_KEY_ID => "subjectKeyIdentifier",
        AUTHORITY_KEY_ID => "authorityKeyIdentifier",
        CRL_DP => "cRLDistributionPoints",
        AIA => "authorityInfoAccess",
        SCT_LIST => "signedCertificateTimestampList",
        NAME_CONSTRAINTS => "nameConstraints",
        "2.5.29.32" => "certificatePolicies",
        "2.5.29.36" => "policyConstraints",
        "2.5.29.54" => "inhibitAnyPolicy",
        "2.5.29.33" => "policyMappings",
        _ => "unknown extension",
    }
}

/// Describes an extension OID for messages, e.g. `nameConstraints (2.5.29.30)`.
pub fn describe(oid: &str) -> String {
    format!("{} ({oid})", name(oid))
}

/// Refuses any extension of `exts` not in `allowed`, and any extension present twice.
/// `what` begins the message, e.g. "the CSR requests".
pub fn check_allowed(
    exts: &[X509Extension<'_>],
    allowed: impl Fn(&str) -> bool,
    what: &str,
) -> Result<(), PkiError> {
    let mut seen: Vec<String> = Vec::new();
    for ext in exts {
        let oid = ext.oid.to_id_string();
        let critical = if ext.critical { "critical " } else { "" };
        if !allowed(&oid) {
            return Err(PkiError::ExtensionNotAllowed(format!(
                "{what} the {critical}extension {}, which is not allowed",
                describe(&oid)
            )));
        }
        if seen.contains(&oid) {
            return Err(PkiError::ExtensionNotAllowed(format!(
                "{what} the extension {} more than once",
                describe(&oid)
            )));
        }
        seen.push(oid);
    }
    Ok(())
}
