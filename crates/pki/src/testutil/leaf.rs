//! Deliberately wrong leaves: signed directly with rcgen, bypassing `sign_leaf`, for the
//! after-signing checks to refuse.

use rcgen::{CertificateParams, DistinguishedName, IsCa, KeyPair, KeyUsagePurpose};
use time::{Duration, OffsetDateTime};

use super::{csr_for, san, Ca};

/// Leaf parameters with the given SANs, usages and validity, for building
/// deliberately wrong certificates directly with rcgen.
pub fn leaf_params(sans: &[&str], nb: OffsetDateTime, na: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = sans.iter().map(|s| san(s)).collect();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = nb;
    params.not_after = na;
    params.use_authority_key_identifier_extension = true;
    params
}

/// What a leaf for `kp` with `sans` and `usages` must look like (no CN, not a CA).
pub fn expectations(
    kp: &KeyPair,
    sans: &[&str],
    usages: Vec<crate::usage::Usage>,
) -> crate::verify::Expectations {
    let parsed = crate::csr::parse_csr(csr_for(kp, None, sans).der()).unwrap();
    crate::verify::Expectations {
        spki_der: parsed.spki_der,
        sans: parsed.sans,
        usages,
        is_ca: false,
        not_after_max: None,
        not_before_min: None,
        max_lifetime: None,
        urls: Default::default(),
        common_name: None,
        echoable_subject: None,
        name_constraints: None,
    }
}

/// Signs `params` for `kp` with `ca` directly (bypassing sign_leaf), to produce
/// deliberately wrong certificates.
pub fn raw_leaf(ca: &Ca, kp: &KeyPair, params: CertificateParams) -> Vec<u8> {
    params.signed_by(kp, &ca.issuer()).unwrap().der().to_vec()
}

/// [`leaf_params`] valid from a minute ago for a day.
pub fn good_params(sans: &[&str]) -> CertificateParams {
    let now = OffsetDateTime::now_utc();
    leaf_params(sans, now - Duration::minutes(1), now + Duration::days(1))
}
