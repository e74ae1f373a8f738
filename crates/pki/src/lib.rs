//! Pure X.509 and issuance-policy logic: CSR parsing, policy checks, name
//! constraints, validity clamping, signer health checks, leaf signing and the
//! after-signing verification of issued certificates.
//!
//! Nothing in this module knows about Kubernetes; the controllers translate
//! their resources into the plain types defined here.

#![forbid(unsafe_code)]

pub mod ca_constraints;
pub mod csr;
mod der;
pub mod duration;
pub mod error;
pub mod extensions;
pub mod keys;
pub mod name_constraints;
pub mod names;
pub mod path;
pub mod policy;
pub mod sign;
pub mod signer_chain;
pub mod subject;
pub mod template;
pub mod usage;
pub mod validated;
pub mod verify;

pub mod redacted;
#[cfg(any(test, feature = "testutil"))]
#[doc(hidden)]
pub mod testutil;

pub use csr::{parse_csr, ParsedCsr, SubjectAltNames, MAX_CSR_BYTES};
pub use duration::{clamp_validity, ClampReason, Validity, BACKDATE, MAX_BACKDATE};

pub use error::PkiError;
pub use keys::{key_info_from_spki, KeyAlgorithm, KeyInfo, SignerKey};
pub use name_constraints::{chain_constraints, check_name_constraints, NameConstraints};
pub use policy::{check_policy, KeyRule, Policy, RequestContext, RequestedCert};
pub use sign::{sign_leaf, sign_leaf_as, CaKey, IssuerName};
pub use signer_chain::{
    cert_info, check_signer, parse_pem_certs, parse_trust_anchors, SignerChain, SignerInfo,
};
pub use template::{LeafExtensions, LeafTemplate};

pub use usage::Usage;
pub use validated::ValidatedChain;
pub use verify::{
    certs_to_pem, chain_pem, check_issued, check_issued_with, Expectations, IssuedValidity,
};
