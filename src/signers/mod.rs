//! Signing backends. A backend turns an approved, policy-checked request into a leaf
//! certificate; everything around it (policy, clamping, after-signing checks) is shared.
//!
//! Adding a remote CA is one new file: implement [`Signer`] and add a loader in [`load`].

pub mod cfssl;
pub mod load;
pub mod pkcs11;
pub mod remote;
pub mod secret;
pub mod vault;

use futures::future::BoxFuture;

use crate::pki::{LeafTemplate, ParsedCsr, PkiError, SignerChain};

/// What a backend is asked to sign.
pub struct SignRequest<'a> {
    /// The parsed, signature-checked CSR.
    pub csr: &'a ParsedCsr,
    /// The leaf the issuer decided to issue (SANs, usages, validity, extensions).
    pub template: &'a LeafTemplate,
}

/// Why a backend did not sign.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignerError {
    /// A local X.509 failure (permanent).
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The remote CA refused the request (4xx): permanent.
    #[error("the CA refused the request: {0}")]
    Refused(String),
    /// The remote CA refused our credentials (Vault 403 even after a fresh login): the
    /// issuer, not the request, is broken.
    #[error("the CA refused our credentials: {0}")]
    Credentials(String),
    /// The signer itself went away (a PKCS#11 token removed, its login lost): like
    /// `Credentials`, the issuer, not the request, is broken.
    #[error("the signer is not available: {0}")]
    SignerDown(String),
    /// The remote CA could not be reached, timed out or failed (5xx): retryable.
    #[error("the CA is unavailable: {0}")]
    Unavailable(String),
}

impl SignerError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SignerError::Unavailable(_))
    }
}

/// A signing backend.
pub trait Signer: Send + Sync {
    /// Backend name for logs, Events and metrics (`secret`, `cfssl`, `vault`).
    fn backend(&self) -> &'static str;
    /// The remote CA's URL when signing calls one (such calls are limited per issuer, per
    /// endpoint and in total, see [`crate::issuance::remote_slots`]).
    fn remote_url(&self) -> Option<&str> {
        None
    }
    /// Whether the backend takes a leaf's names only from the CSR (Vault with
    /// `use_csr_sans`): it cannot sign names the CSR does not carry, such as a pod
    /// certificate's, whose stub CSR is empty.
    fn names_from_csr_only(&self) -> bool {
        false
    }
    /// Whether the backend needs the request's PKCS#10 bytes (a remote CA takes a CSR); an
    /// in-process signer builds the leaf from the template and the public key alone, so it
    /// also signs a pod's `pkixPublicKey`, which comes without a CSR.
    fn needs_csr_bytes(&self) -> bool {
        false
    }
    /// The signer certificate and the intermediates above it (never the root).
    fn chain(&self) -> &SignerChain;
    /// Whether the backend issues exactly the requested validity. Remote CAs whose profile
    /// decides the lifetime (CFSSL) return `false`: their certificates are then only held to
    /// the policy's limit (maxDuration and the chain's notAfter), not to the requested duration.
    fn exact_validity(&self) -> bool {
        true
    }
    /// How much later than the requested notAfter an exact-validity backend may end the
    /// certificate: a remote CA that is told a TTL counts it from its own clock.
    fn validity_tolerance(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
    /// Sign and return the leaf certificate (DER). The caller checks the result.
    fn sign<'a>(&'a self, req: SignRequest<'a>) -> BoxFuture<'a, Result<Vec<u8>, SignerError>>;
}
