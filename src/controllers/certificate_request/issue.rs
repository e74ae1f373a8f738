//! Steps 6-8 of DESIGN.md section 3 as pure functions: check a request before signing and
//! decide the leaf, then check what a backend returned. Shared by CertificateRequests and
//! Kubernetes CertificateSigningRequests.

use std::time::Duration;

use crate::pki::{
    self, ClampReason, Expectations, LeafTemplate, ParsedCsr, PkiError, RequestContext,
    RequestedCert, SignerChain, Usage, Validity,
};
use crate::signers::load::LoadedIssuer;

/// What a request asks for, independent of its API kind.
#[derive(Debug, Clone)]
pub struct RequestInput<'a> {
    /// The CSR bytes (PEM or DER).
    pub csr: &'a [u8],
    /// Requested lifetime, if any.
    pub duration: Option<Duration>,
    /// Whether a CA certificate is requested.
    pub is_ca: bool,
    /// Requested usages (cert-manager spellings); empty means cert-manager's default.
    pub usages: &'a [String],
    /// `{namespace}` and `{serviceAccount}` for the policy.
    pub context: RequestContext,
}

/// A request that passed every check before signing.
pub struct Prepared {
    /// The parsed CSR.
    pub csr: ParsedCsr,
    /// The leaf to issue.
    pub template: LeafTemplate,
    /// What the issued certificate must look like.
    pub expect: Expectations,
}

/// Step 6 and the lifetime of step 7: every check before signing. Errors are permanent.
pub fn prepare(
    input: &RequestInput<'_>,
    issuer: &LoadedIssuer,
    now: time::OffsetDateTime,
) -> Result<Prepared, PkiError> {
    let csr = pki::parse_csr(input.csr)?;
    let usages = if input.usages.is_empty() {
        pki::usage::default_usages()
    } else {
        input
            .usages
            .iter()
            .map(|u| Usage::parse(u))
            .collect::<Result<Vec<_>, _>>()?
    };
    let requested = RequestedCert::from_csr(&csr, input.is_ca, usages.clone(), input.duration);
    pki::check_policy(&issuer.policy, &requested, &input.context)?;
    let chain = issuer.signer.chain();
    let constraints = pki::chain_constraints(&chain_ders(chain))?;
    pki::check_name_constraints(&constraints, &csr.sans)?;
    let validity = pki::clamp_validity(
        now,
        input.duration,
        issuer.policy.max_duration,
        chain.earliest_not_after(),
    )?;
    let mut template = LeafTemplate::new(&csr, &requested, validity, issuer.extensions.clone())?;
    if input.is_ca {
        pki::signer_chain::check_room_for_sub_ca(chain, &issuer.anchors_der, now)?;
        template.name_constraints =
            pki::ca_constraints::derived_constraints(&issuer.policy, &input.context)?;
    }
    let expect = Expectations {
        spki_der: csr.spki_der.clone(),
        sans: csr.sans.clone(),
        usages,
        is_ca: input.is_ca,
        // Set by `verify_issued`: it depends on the backend and on when the CA signed.
        not_after_max: None,
        common_name: csr.common_name.clone(),
        name_constraints: template.name_constraints.clone(),
    };
    Ok(Prepared {
        csr,
        template,
        expect,
    })
}

/// The signer certificate followed by the intermediates above it.
pub fn chain_ders(chain: &SignerChain) -> Vec<Vec<u8>> {
    std::iter::once(chain.signer_der.clone())
        .chain(chain.intermediates_der.iter().cloned())
        .collect()
}

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
            crate::controllers::issuer::rfc3339(self.not_after),
            crate::controllers::issuer::rfc3339(requested.not_after)
        )
    }
}

/// Step 8: check what the backend returned; on success, the PEM to write.
pub fn verify_issued(
    leaf_der: &[u8],
    prepared: &Prepared,
    issuer: &LoadedIssuer,
    now: time::OffsetDateTime,
) -> Result<Issued, PkiError> {
    let chain = issuer.signer.chain();
    let intermediates = chain_ders(chain);
    let mut expect = prepared.expect.clone();
    expect.not_after_max = Some(if issuer.signer.exact_validity() {
        let tolerance =
            time::Duration::try_from(issuer.signer.validity_tolerance()).unwrap_or_default();
        (prepared.template.validity.not_after + tolerance).min(chain.earliest_not_after())
    } else {
        policy_limit(issuer, now)
    });
    pki::check_issued(leaf_der, &intermediates, &issuer.anchors_der, &expect, now)?;
    let info = pki::cert_info(leaf_der)?;
    Ok(Issued {
        chain_pem: pki::chain_pem(leaf_der, &intermediates),
        ca_pem: issuer.anchors_pem.clone(),
        not_before: info.not_before,
        not_after: info.not_after,
    })
}

/// The latest notAfter the policy allows for a certificate checked at `now`.
pub fn policy_limit(issuer: &LoadedIssuer, now: time::OffsetDateTime) -> time::OffsetDateTime {
    let max = time::Duration::try_from(issuer.policy.max_duration).unwrap_or(time::Duration::MAX);
    now.saturating_add(max)
        .min(issuer.signer.chain().earliest_not_after())
}

/// A short description of the lifetime for Events.
pub fn describe_validity(v: &Validity) -> String {
    let why = match v.clamped_by {
        ClampReason::Requested => "as requested",
        ClampReason::MaxDuration => "clamped to the issuer's maxDuration",
        ClampReason::SignerExpiry => "clamped to the signer chain's notAfter",
    };
    format!(
        "valid until {} ({why})",
        crate::controllers::issuer::rfc3339(v.not_after)
    )
}
