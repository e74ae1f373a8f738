//! Step 3 of the request flow (docs/design.md) after signing, as a pure function: check what a backend returned against
//! the issuer's validated chain, and the PEM to write.

use super::prepare::Prepared;
use crate::pki::{self, ClampReason, PkiError, Validity};
use crate::signers::load::LoadedIssuer;

/// A certificate that passed the after-signing checks, ready to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Issued {
    /// Leaf then intermediates, PEM (what `status.certificate` gets).
    pub chain_pem: String,
    /// Trust anchors, PEM (what `status.ca` gets).
    pub ca_pem: String,
    /// The leaf's notBefore.
    pub not_before: time::OffsetDateTime,
    /// The leaf's notAfter.
    pub not_after: time::OffsetDateTime,
}

impl Issued {
    /// A description of the issued lifetime for Events and messages.
    pub fn describe(&self, requested: &Validity, exact: bool) -> String {
        if exact {
            return describe_validity(requested);
        }
        let hours = (self.not_after - self.not_before).whole_minutes() as f64 / 60.0;
        format!(
            "valid until {} ({hours:.1}h as the CA's profile decided; requested until {})",
            super::rfc3339(self.not_after),
            super::rfc3339(requested.not_after)
        )
    }
}

/// Step 8: check what the backend returned against the issuer's validated chain; on
/// success, the PEM to write.
pub fn verify_issued(
    leaf_der: &[u8],
    prepared: &Prepared,
    issuer: &LoadedIssuer,
    now: time::OffsetDateTime,
) -> Result<Issued, PkiError> {
    let mut expect = prepared.expect.clone();
    expect.not_after_max = Some(if issuer.signer.exact_validity() {
        let tolerance =
            time::Duration::try_from(issuer.signer.validity_tolerance()).unwrap_or_default();
        (prepared.template.validity.not_after + tolerance).min(issuer.chain.earliest_not_after())
    } else {
        policy_limit(issuer, now)
    });
    let checked_at = prepared.template.validity.not_before
        + time::Duration::try_from(pki::BACKDATE).unwrap_or_default();
    let max_backdate = time::Duration::try_from(pki::MAX_BACKDATE).unwrap_or_default();
    expect.not_before_min = Some(checked_at - max_backdate);
    let policy_lifetime = time::Duration::try_from(issuer.policy.max_duration)
        .unwrap_or(time::Duration::MAX)
        .saturating_add(max_backdate);
    expect.max_lifetime = Some(
        prepared
            .expect
            .max_lifetime
            .map_or(policy_lifetime, |m| m.min(policy_lifetime)),
    );
    let validity = pki::check_issued_with(leaf_der, &issuer.chain, &expect, now)?;
    let mut chain_pem = pki::certs_to_pem(&[leaf_der.to_vec()]);
    chain_pem.push_str(issuer.chain.chain_pem());
    Ok(Issued {
        chain_pem,
        ca_pem: issuer.anchors_pem.clone(),
        not_before: validity.not_before,
        not_after: validity.not_after,
    })
}

/// The latest notAfter the policy allows for a certificate checked at `now`.
pub fn policy_limit(issuer: &LoadedIssuer, now: time::OffsetDateTime) -> time::OffsetDateTime {
    let max = time::Duration::try_from(issuer.policy.max_duration).unwrap_or(time::Duration::MAX);
    now.saturating_add(max)
        .min(issuer.chain.earliest_not_after())
}

/// A short description of the lifetime for Events.
pub fn describe_validity(v: &Validity) -> String {
    let why = match v.clamped_by {
        ClampReason::Requested => "as requested",
        ClampReason::MaxDuration => "clamped to the issuer's maxDuration",
        ClampReason::SignerExpiry => "clamped to the signer chain's notAfter",
    };
    format!("valid until {} ({why})", super::rfc3339(v.not_after))
}
