//! Which X.509 extensions may appear in a CSR's extensionRequest and in an issued leaf.
//! Everything else, and any extension present twice, is refused.

use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension, X509Extension};

use super::error::PkiError;
use super::template::LeafExtensions;

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

/// Extensions an issued end-entity certificate may carry. cRLDistributionPoints and
/// authorityInfoAccess only with the URLs of `spec.extensions` ([`check_leaf_urls`]); SCT
/// lists never (`spec.extensions` cannot ask for them).
pub const LEAF_EXTENSIONS: &[&str] = &[
    SAN,
    KEY_USAGE,
    EXT_KEY_USAGE,
    BASIC_CONSTRAINTS,
    SUBJECT_KEY_ID,
    AUTHORITY_KEY_ID,
    CRL_DP,
    AIA,
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

/// id-ad-ocsp.
const AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";
/// id-ad-caIssuers.
const AD_CA_ISSUERS: &str = "1.3.6.1.5.5.7.48.2";

fn uri_in(kind: &str, name: &GeneralName<'_>, allowed: &[String]) -> Result<(), String> {
    match name {
        GeneralName::URI(u) if allowed.iter().any(|a| a == u) => Ok(()),
        GeneralName::URI(u) => Err(format!(
            "the issued certificate has the {kind} URL {u:?}, which spec.extensions does not list"
        )),
        other => Err(format!(
            "the issued certificate has a {kind} that is not a URL ({other})"
        )),
    }
}

/// The leaf's cRLDistributionPoints and authorityInfoAccess may carry only URLs that
/// `spec.extensions` lists (a remote CA may leave some out, never add its own): CRL
/// distribution points as full-name URIs without reasons or cRLIssuer, AIA entries only for
/// OCSP and caIssuers.
pub fn check_leaf_urls(exts: &[X509Extension<'_>], allowed: &LeafExtensions) -> Result<(), String> {
    for ext in exts {
        match ext.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(dps) => {
                for dp in &dps.points {
                    if dp.reasons.is_some() || dp.crl_issuer.is_some() {
                        return Err("the issued certificate has a CRL distribution point with reasons or a cRLIssuer".into());
                    }
                    let Some(DistributionPointName::FullName(names)) = &dp.distribution_point
                    else {
                        return Err("the issued certificate has a CRL distribution point without a full-name URL".into());
                    };
                    for n in names {
                        uri_in(
                            "CRL distribution point",
                            n,
                            &allowed.crl_distribution_points,
                        )?;
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for ad in &aia.accessdescs {
                    let (kind, list) = match ad.access_method.to_id_string().as_str() {
                        AD_OCSP => ("OCSP", &allowed.ocsp_servers),
                        AD_CA_ISSUERS => ("CA issuers", &allowed.issuing_certificate_urls),
                        other => {
                            return Err(format!(
                                "the issued certificate has an authorityInfoAccess entry of method {other}"
                            ))
                        }
                    };
                    uri_in(kind, &ad.access_location, list)?;
                }
            }
            ParsedExtension::UnsupportedExtension { .. } | ParsedExtension::ParseError { .. }
                if [CRL_DP, AIA].contains(&ext.oid.to_id_string().as_str()) =>
            {
                return Err(format!(
                    "the issued certificate has a malformed {}",
                    describe(&ext.oid.to_id_string())
                ))
            }
            _ => {}
        }
    }
    Ok(())
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
