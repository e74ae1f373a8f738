//! One mutual-TLS exchange between two workloads over loopback (rustls on aws-lc-rs): each
//! presents its chain (`tls.crt` as cert-manager wrote it: leaf, then intermediate) and
//! verifies the other's against the trust bundle it holds.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A workload: its chain and key (PEM), the DNS name in its certificate, and the trust bundle
/// (PEM) it verifies peers with.
pub struct Workload {
    /// Label for messages.
    pub name: String,
    /// `tls.crt`.
    pub chain: String,
    /// `tls.key`.
    pub key: String,
    /// DNS SAN of its certificate.
    pub dns: String,
    /// The trust bundle it holds.
    pub trust: String,
}

fn roots(pem_text: &str) -> Result<Arc<RootCertStore>, String> {
    let mut store = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pem_text.as_bytes()) {
        store
            .add(c.map_err(|e| format!("trust bundle: {e}"))?)
            .map_err(|e| format!("trust anchor: {e}"))?;
    }
    Ok(Arc::new(store))
}

fn chain(w: &Workload) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let certs = CertificateDer::pem_slice_iter(w.chain.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} chain: {e}", w.name))?;
    let key = PrivateKeyDer::from_pem_slice(w.key.as_bytes())
        .map_err(|e| format!("{} key: {e}", w.name))?;
    Ok((certs, key))
}

/// `client` connects to `server`; both authenticate. `Ok` once a byte went each way.
pub async fn handshake(server: &Workload, client: &Workload) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let (s_chain, s_key) = chain(server)?;
    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots(&server.trust)?, provider.clone())
            .build()
            .map_err(|e| e.to_string())?;
    let s_cfg = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(s_chain, s_key)
        .map_err(|e| e.to_string())?;
    let (c_chain, c_key) = chain(client)?;
    let c_cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots(&client.trust)?)
        .with_client_auth_cert(c_chain, c_key)
        .map_err(|e| e.to_string())?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(s_cfg));
    let serve = async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = acceptor
            .accept(tcp)
            .await
            .map_err(|e| format!("server side: {e}"))?;
        let mut b = [0u8; 1];
        tls.read_exact(&mut b)
            .await
            .map_err(|e| format!("server read: {e}"))?;
        tls.write_all(b"s")
            .await
            .map_err(|e| format!("server write: {e}"))?;
        tls.shutdown().await.ok();
        Ok::<(), String>(())
    };
    let name = ServerName::try_from(server.dns.clone()).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(c_cfg));
    let connect = async move {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("client side: {e}"))?;
        tls.write_all(b"c")
            .await
            .map_err(|e| format!("client write: {e}"))?;
        let mut b = [0u8; 1];
        tls.read_exact(&mut b)
            .await
            .map_err(|e| format!("client read (server refused the client certificate?): {e}"))?;
        Ok::<(), String>(())
    };
    let (s, c) = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        tokio::join!(serve, connect)
    })
    .await
    .map_err(|_| "handshake timed out".to_string())?;
    s.and(c)
}

/// Handshakes both ways (each workload as server once). `Err` names the failing direction.
pub async fn both_ways(a: &Workload, b: &Workload) -> Result<(), String> {
    handshake(a, b)
        .await
        .map_err(|e| format!("{} serving {}: {e}", a.name, b.name))?;
    handshake(b, a)
        .await
        .map_err(|e| format!("{} serving {}: {e}", b.name, a.name))
}
