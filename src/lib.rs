//! pki-issuer: a cert-manager external issuer that signs with an intermediate CA rooted in an
//! organisation's existing PKI. The design: `docs/design.md`.
//!
//! - [`api`]: the CRDs and the cert-manager types we read and write;
//! - [`pki`]: pure X.509 (CSR, policy, name constraints, signing, verification);
//! - [`signers`]: signing backends;
//! - [`cpu`]: CPU-heavy work off the async workers, bounded;
//! - [`issuance`]: one attempt at a request (check, sign, verify);
//! - [`controllers`]: the issuer controller and the one request pipeline;
//! - [`runtime`]: flags, admin HTTP, metrics, logging, shutdown.

pub mod api;
pub mod controllers;
pub mod cpu;
pub mod crds;
pub mod issuance;
pub use pki;
pub use pki::redacted;
pub mod runtime;
pub mod signers;
