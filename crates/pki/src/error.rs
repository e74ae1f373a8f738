//! Error type for the PKI module. Messages name the offending value but never
//! contain private key material.

/// Every failure the PKI module can report. Display messages are meant to be
/// shown to users (in CertificateRequest conditions and events).
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum PkiError {
    /// A wildcard DNS name was requested but the policy does not allow wildcards.
    #[error(
        "wildcard DNS name {0:?} is not allowed: the issuer policy does not set allowWildcardNames"
    )]
    WildcardNotAllowed(String),
    /// A DNS SAN is not allowed by the issuer policy.
    #[error("DNS name {0:?} is not allowed by the issuer policy")]
    DnsNameNotAllowed(String),
    /// A URI SAN is not allowed by the issuer policy.
    #[error("URI {0:?} is not allowed by the issuer policy")]
    UriNotAllowed(String),
    /// An IP SAN is not inside any allowed range.
    #[error("IP address {0} is not allowed by the issuer policy")]
    IpNotAllowed(String),
    /// An email SAN is not allowed by the issuer policy.
    #[error("email address {0:?} is not allowed by the issuer policy")]
    EmailNotAllowed(String),
    /// The subject common name is not allowed by the issuer policy.
    #[error("common name {0:?} is not allowed by the issuer policy (the common name must be one of the requested subject alternative names)")]
    CommonNameNotAllowed(String),
    /// A name in the request is syntactically invalid.
    #[error("invalid name: {0}")]
    InvalidName(String),
    /// A SAN violates a nameConstraints extension of a CA in the signer chain.
    #[error("{name} violates the name constraints of the signer chain: {constraint}")]
    NameConstraintViolation {
        /// The offending name, e.g. `DNS:evil.example.com`.
        name: String,
        /// The constraint it violates, including the constraining CA.
        constraint: String,
    },
    /// The public key algorithm or size is not allowed.
    #[error("{algorithm} key of {size} bits is not allowed by the issuer policy")]
    KeyAlgorithmNotAllowed {
        /// Algorithm name (RSA, ECDSA, Ed25519).
        algorithm: String,
        /// Key size in bits.
        size: u32,
    },
    /// The public key algorithm is not supported at all (DSA, P-192, secp256k1, ...).
    #[error("unsupported public key: {0}")]
    UnsupportedKeyAlgorithm(String),
    /// The CSR could not be parsed.
    #[error("invalid certificate signing request: {0}")]
    InvalidCsr(String),
    /// The CSR's self-signature does not verify.
    #[error("certificate signing request signature is invalid")]
    CsrSignatureInvalid,
    /// The CSR exceeds [`crate::csr::MAX_CSR_BYTES`].
    #[error("certificate signing request is too large ({0} bytes, maximum is 65536)")]
    CsrTooLarge(usize),
    /// A CA certificate was requested but the policy forbids it.
    #[error("issuing CA certificates (isCA) is not allowed by the issuer policy (it does not set policy.allowCA)")]
    CaNotAllowed,
    /// A key usage is not allowed by the policy.
    #[error("usage {0:?} is not allowed by the issuer policy{1}")]
    UsageNotAllowed(String, &'static str),
    /// A usage string is not one of cert-manager's usages.
    #[error("unknown usage {0:?}")]
    UnknownUsage(String),
    /// The requested duration is below the policy minimum.
    #[error("requested duration {requested_secs}s is shorter than the minimum {min_secs}s")]
    DurationTooShort {
        /// Requested duration in seconds.
        requested_secs: u64,
        /// Minimum duration in seconds.
        min_secs: u64,
    },
    /// The policy requires at least one SAN.
    #[error("the issuer policy requires at least one subject alternative name")]
    NoSubjectAltName,
    /// The policy itself is malformed.
    #[error("invalid issuer policy: {0}")]
    InvalidPolicy(String),
    /// The signer certificate (or chain) is expired or not yet valid.
    #[error("signer is not valid: {0}")]
    SignerNotValid(String),
    /// The private key does not belong to the signer certificate.
    #[error("the private key does not match the signer certificate's public key")]
    SignerKeyMismatch,
    /// The signer certificate cannot act as a CA.
    #[error("signer certificate is not a usable CA: {0}")]
    SignerNotCa(String),
    /// The private key could not be loaded (message never includes key bytes).
    #[error("invalid signer private key: {0}")]
    InvalidKey(String),
    /// A certificate could not be parsed.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// Chain building or path validation failed.
    #[error("certificate chain is invalid: {0}")]
    ChainInvalid(String),
    /// A certificate chain or trust-anchor bundle exceeds a size or work limit
    /// (see [`crate::path`]).
    #[error("certificate chain refused: {0}")]
    ChainLimit(String),
    /// The subject DN is not empty or a single CN.
    #[error("{0}")]
    SubjectNotAllowed(String),
    /// An extension that is not on the allowlist, or present twice.
    #[error("{0}")]
    ExtensionNotAllowed(String),
    /// The request's usages carry no extended key usage, which means "any purpose".
    #[error("the requested usages [{0}] name no extended key usage, so the certificate would be valid for any purpose, which the issuer policy does not allow (it does not list \"any\"); request the extended usages you need, e.g. \"server auth\" and/or \"client auth\"")]
    NoExtendedKeyUsage(String),
    /// An extended key usage outside what a CA of the signer chain permits.
    #[error("{0}")]
    ExtendedKeyUsageNotPermitted(String),
    /// A CA certificate cannot be issued under this signer or policy.
    #[error("a CA certificate cannot be issued: {0}")]
    CaNotPossible(String),
    /// The issued certificate does not match what was requested.
    #[error("{0}")]
    IssuedCertMismatch(String),
    /// Certificate generation failed.
    #[error("signing failed: {0}")]
    SigningFailed(String),
}
