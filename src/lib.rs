//! pki-issuer: a cert-manager external issuer that signs with an intermediate CA rooted in an
//! organisation's existing PKI.

pub mod api;
pub mod crds;
pub mod pki;
