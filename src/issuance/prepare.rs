//! Step 3 of the request flow (docs/design.md) before signing, as a pure function: every check of a request before
//! signing, and the leaf to issue. Every fact about the signer chain comes from the issuer's
//! [`crate::pki::ValidatedChain`], checked once per issuer check.

use std::time::Duration;

use super::pod::{self, PodKey, PodRequest};
use crate::pki::{
    self, Expectations, LeafTemplate, ParsedCsr, PkiError, RequestContext, RequestedCert, Usage,
};
use crate::signers::load::LoadedIssuer;

/// What a request asks for, independent of its API kind.
#[derive(Debug, Clone)]
pub struct RequestInput {
    /// The CSR bytes (PEM or DER).
    pub csr: Vec<u8>,
    /// Requested lifetime, if any.
    pub duration: Option<Duration>,
    /// Whether a CA certificate is requested.
    pub is_ca: bool,
    /// Requested usages (cert-manager spellings); empty means cert-manager's default.
    pub usages: Vec<String>,
    /// `{namespace}` and `{serviceAccount}` for the policy.
    pub context: RequestContext,
    /// A pod certificate: its key and names come from here, not from `csr`.
    pub pod: Option<PodRequest>,
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
    input: &RequestInput,
    issuer: &LoadedIssuer,
    now: time::OffsetDateTime,
) -> Result<Prepared, PkiError> {
    let csr = match &input.pod {
        Some(p) => {
            if issuer.signer.names_from_csr_only() {
                return Err(PkiError::SigningFailed(format!(
                    "the {} backend takes a certificate's names only from the CSR, and a pod's stub CSR carries none: pod certificates need the secret, pkcs11 or cfssl backend",
                    issuer.signer.backend()
                )));
            }
            if matches!(p.key, PodKey::Pkix { .. }) && issuer.signer.needs_csr_bytes() {
                return Err(PkiError::InvalidCsr(
                    "a PodCertificateRequest with pkixPublicKey (Kubernetes 1.35) carries no CSR for a remote CA; only the secret and pkcs11 backends sign it".into(),
                ));
            }
            pod::pod_csr(p, issuer.pod_certificates.as_ref())?
        }
        None => pki::parse_csr(&input.csr)?,
    };
    let usages = if input.usages.is_empty() {
        pki::default_usages()
    } else {
        input
            .usages
            .iter()
            .map(|u| Usage::parse(u))
            .collect::<Result<Vec<_>, _>>()?
    };
    let requested = RequestedCert::from_csr(&csr, input.is_ca, usages.clone(), input.duration);
    pki::check_policy(&issuer.policy, &requested, &input.context)?;
    let chain = &issuer.chain;
    pki::check_name_constraints(chain.name_constraints(), &csr.sans)?;
    chain.check_usages(&pki::issued_usages(&usages, input.is_ca))?;
    let mut validity = pki::clamp_validity(
        now,
        input.duration,
        issuer.policy.max_duration,
        chain.earliest_not_after(),
    )?;
    if let Some(p) = &input.pod {
        // Counted from notBefore: never longer than maxExpirationSeconds nor maxDuration.
        validity = pod::pod_validity(validity, p.max_lifetime.min(issuer.policy.max_duration))?;
    }
    let mut template = LeafTemplate::new(&csr, &requested, validity, issuer.extensions.clone())?;
    if input.is_ca {
        chain.check_room_for_sub_ca()?;
        template.name_constraints = Some(pki::derived_constraints(&issuer.policy, &input.context)?);
    }
    let expect = Expectations {
        spki_der: csr.spki_der.clone(),
        sans: csr.sans.clone(),
        usages,
        is_ca: input.is_ca,
        // Set by `verify_issued`: it depends on the backend and on when the CA signed.
        not_after_max: None,
        not_before_min: None,
        // A pod certificate's `maxExpirationSeconds`; `verify_issued` adds the policy's.
        max_lifetime: input
            .pod
            .as_ref()
            .map(|p| p.max_lifetime.min(issuer.policy.max_duration))
            .map(|d| time::Duration::try_from(d).unwrap_or(time::Duration::MAX)),
        urls: issuer.extensions.clone(),
        common_name: csr.common_name.clone(),
        echoable_subject: csr.echoable_subject.clone(),
        name_constraints: template.name_constraints.clone(),
    };
    Ok(Prepared {
        csr,
        template,
        expect,
    })
}
