//! TLS settings of a remote CA connection: which roots to trust and an optional client
//! certificate for mTLS. Only the given bundle is trusted, never the system roots.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::pki;

/// A client certificate chain and its key (PEM).
pub struct ClientCert<'a> {
    /// Certificate chain, leaf first.
    pub cert_pem: &'a str,
    /// PKCS#8, PKCS#1 or SEC1 private key.
    pub key_pem: &'a str,
}

/// A rustls configuration trusting only `ca_pem`, optionally presenting `client`.
pub fn config(
    ca_pem: &str,
    client: Option<ClientCert<'_>>,
) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    for der in pki::parse_pem_certs(ca_pem).map_err(|e| format!("CA bundle: {e}"))? {
        roots
            .add(CertificateDer::from(der))
            .map_err(|e| format!("CA bundle: {e}"))?;
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    match client {
        None => Ok(builder.with_no_client_auth()),
        Some(c) => {
            let certs = pki::parse_pem_certs(c.cert_pem)
                .map_err(|e| format!("client certificate: {e}"))?
                .into_iter()
                .map(CertificateDer::from)
                .collect();
            let key = PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes())
                .map_err(|_| "client key: not a PEM private key".to_string())?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("client certificate: {e}"))
        }
    }
}
