//! Every reason pki-issuer writes: of `Ready` conditions, of Events, and the labels of the
//! failure metric. One enum, so a reason is never misspelt in one place.

use std::fmt;

/// A condition reason, Event reason or metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A certificate was written (request `Ready=True`, Normal Event).
    Issued,
    /// Waiting: the issuer is not ready or a retryable error (request and issuer `Ready=False`).
    Pending,
    /// Failed for good (request and issuer `Ready=False`).
    Failed,
    /// An approver denied the request.
    Denied,
    /// The issuer's signer and trust anchors passed every check (issuer `Ready=True`).
    Checked,
    /// Refused before signing: the request asks for what the policy does not grant.
    PolicyViolation,
    /// The backend did not sign.
    SigningFailed,
    /// The signed certificate failed the after-signing checks and was not written.
    VerificationFailed,
    /// Retryable errors lasted past `--max-retry-duration`.
    RetriesExhausted,
    /// A retryable error; the request is retried.
    RetryableError,
    /// The issuer's CA refused its credentials: the request waits for the issuer.
    IssuerNotReady,
    /// An object in the watch stream could not be read as its type.
    InvalidObject,
    /// The signer expires within 30 days.
    SignerExpiringSoon,
    /// The trust anchors are published where `trustDistribution` asks (`TrustDistributed=True`).
    Published,
    /// The issuer check failed: nothing new is published, the previous bundle stays.
    NotPublished,
    /// A ConfigMap of the distribution's name exists that pki-issuer did not write.
    ForeignObject,
    /// The API server does not serve the resource (ClusterTrustBundle).
    ApiUnavailable,
    /// The issuer kind may not publish what it asks for.
    NotAllowed,
    /// Publishing failed on the API; retried.
    PublishFailed,
    /// A pod certificate's key type the issuer does not sign (PodCertificateRequest API).
    UnsupportedKeyType,
    /// A PodCertificateRequest's `unverifiedUserAnnotations` holds a key pki-issuer does not
    /// know (it knows none).
    InvalidUnverifiedUserAnnotations,
    /// A PKIIssuer's signer name in a PodCertificateRequest of another namespace.
    SignerNamespaceMismatch,
    /// A PodCertificateRequest with neither or both of its key forms.
    InvalidPublicKey,
}

impl Reason {
    /// The reason as written to the API and to metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Issued => "Issued",
            Reason::Pending => "Pending",
            Reason::Failed => "Failed",
            Reason::Denied => "Denied",
            Reason::Checked => "Checked",
            Reason::PolicyViolation => "PolicyViolation",
            Reason::SigningFailed => "SigningFailed",
            Reason::VerificationFailed => "VerificationFailed",
            Reason::RetriesExhausted => "RetriesExhausted",
            Reason::RetryableError => "RetryableError",
            Reason::IssuerNotReady => "IssuerNotReady",
            Reason::InvalidObject => "InvalidObject",
            Reason::SignerExpiringSoon => "SignerExpiringSoon",
            Reason::Published => "Published",
            Reason::NotPublished => "NotPublished",
            Reason::ForeignObject => "ForeignObject",
            Reason::ApiUnavailable => "ApiUnavailable",
            Reason::NotAllowed => "NotAllowed",
            Reason::PublishFailed => "PublishFailed",
            Reason::UnsupportedKeyType => "UnsupportedKeyType",
            Reason::InvalidUnverifiedUserAnnotations => "InvalidUnverifiedUserAnnotations",
            Reason::SignerNamespaceMismatch => "SignerNamespaceMismatch",
            Reason::InvalidPublicKey => "InvalidPublicKey",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
