//! Kubernetes API types: our CRDs and the cert-manager types we read and write.

pub mod bounds;
pub mod cert_manager;
pub mod condition;
pub mod duration;
pub mod issuer;
pub mod references;
pub mod vault;

pub use condition::Condition;
pub use issuer::{
    IssuerKind, IssuerSpec, IssuerStatus, PKIClusterIssuer, PKIClusterIssuerSpec, PKIIssuer,
    PKIIssuerSpec,
};

/// The API group of our CRDs.
pub const GROUP: &str = "pki-issuer.io";
/// The field manager used for every write.
pub const FIELD_MANAGER: &str = "pki-issuer";
