//! Pure X.509 and issuance-policy logic: CSR parsing, policy checks, name
//! constraints, validity clamping, signer health checks, leaf signing and the
//! after-signing verification of issued certificates.
//!
//! Nothing in this crate knows about Kubernetes (it has no Kubernetes dependency); the
//! controllers translate their resources into the plain types re-exported at the root, which
//! are the whole public API (the modules are private). `testutil` (feature `testutil`) is the
//! project's one test-PKI kit.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ca_constraints;
mod csr;
mod der;
mod duration;
mod error;
mod extensions;
mod keys;
mod name_constraints;
mod names;
mod path;
mod policy;
mod sign;
mod signer_chain;
mod subject;
mod template;
mod usage;
mod validated;
mod verify;

pub mod redacted;
#[cfg(any(test, feature = "testutil"))]
#[doc(hidden)]
pub mod testutil;

// The public API, by what a caller does with it. The modules themselves are private: what is
// not re-exported here is an implementation detail of this crate.

/// Reading a request: the CSR, its names and extensions, and the bounds on them.
pub use csr::{parse_csr, ParsedCsr, SubjectAltNames, MAX_CSR_BYTES};
pub use extensions::CSR_EXTENSIONS;
pub use names::MAX_SANS;

/// Deciding: the issuer policy, key rules, usages, lifetimes and name constraints.
pub use ca_constraints::derived_constraints;
pub use duration::{clamp_validity, ClampReason, Validity, BACKDATE, MAX_BACKDATE};
pub use keys::{key_info_from_spki, KeyAlgorithm, KeyInfo, SignerKey};
pub use name_constraints::{
    chain_constraints, check_name_constraints, GeneralSubtrees, NameConstraints,
};
pub use policy::{
    check_patterns, check_policy, KeyRule, Policy, RequestContext, RequestedCert,
    DEFAULT_ALLOWED_USAGES,
};
pub use usage::{default_usages, Usage};

/// The signer: its chain to the trust anchors, checked once with bounded work.
pub use path::{MAX_CHAIN_CERTS, MAX_CHAIN_PEM_BYTES};
pub use signer_chain::{
    cert_info, check_signer, parse_pem_certs, parse_trust_anchors, SignerChain, SignerInfo,
};
pub use validated::ValidatedChain;

/// Signing, and checking what was signed (by this process or a remote CA).
pub use error::PkiError;
pub use sign::{sign_leaf, sign_leaf_as, CaKey, IssuerName};
pub use template::{issued_usages, LeafExtensions, LeafTemplate};
pub use verify::{
    certs_to_pem, chain_pem, check_issued, check_issued_with, Expectations, IssuedValidity,
};
