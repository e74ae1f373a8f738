//! A real TLS 1.3 mTLS handshake between two issued leaves (rustls, aws-lc-rs).

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn identity(signer: &Ca, chain: &SignerChain, name: &str) -> Identity {
    let key = SignerKey::from_pem(&signer.key_pem).unwrap();
    let kp = testutil::key(KeyKind::P256);
    let csr = testutil::csr_for(&kp, None, &[name, "127.0.0.1", SPIFFE]);
    let parsed = crate::csr::parse_csr(csr.der()).unwrap();
    let req = crate::policy::RequestedCert::from_csr(
        &parsed,
        false,
        vec![
            Usage::ServerAuth,
            Usage::ClientAuth,
            Usage::DigitalSignature,
        ],
        None,
    );
    let v = crate::duration::clamp_validity(
        now(),
        None,
        std::time::Duration::from_secs(86400),
        chain.earliest_not_after(),
    )
    .unwrap();
    let t =
        crate::template::LeafTemplate::new(&parsed, &req, v, LeafExtensions::default()).unwrap();
    let leaf = crate::sign::sign_leaf(&t, &parsed, chain, &key).unwrap();
    let mut certs = vec![CertificateDer::from(leaf)];
    certs.extend(chain.all_der().into_iter().map(CertificateDer::from));
    Identity {
        chain: certs,
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(kp.serialize_der())),
    }
}

fn roots(root: &Ca) -> Arc<RootCertStore> {
    let mut store = RootCertStore::empty();
    store.add(CertificateDer::from(root.der())).unwrap();
    Arc::new(store)
}

/// Runs one handshake + echo; returns the server-side and client-side results.
async fn handshake(
    server_id: Identity,
    client_id: Identity,
    root: &Ca,
) -> (Result<(), String>, Result<(), String>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(root), provider.clone())
        .build()
        .unwrap();
    let server_cfg = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(server_id.chain, server_id.key)
        .unwrap();
    let client_cfg = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots(root))
        .with_client_auth_cert(client_id.chain, client_id.key)
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        tls.write_all(&buf).await.map_err(|e| e.to_string())?;
        tls.shutdown().await.map_err(|e| e.to_string())
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));
    let client = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let mut tls = connector
            .connect(ServerName::try_from("server.example.com").unwrap(), tcp)
            .await
            .map_err(|e| e.to_string())?;
        tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        assert_eq!(&buf, b"ping");
        Ok::<(), String>(())
    };
    let client_res = tokio::time::timeout(std::time::Duration::from_secs(20), client)
        .await
        .expect("client timed out");
    let server_res = tokio::time::timeout(std::time::Duration::from_secs(20), server)
        .await
        .expect("server timed out")
        .unwrap();
    (server_res, client_res)
}

#[tokio::test]
async fn mtls_handshake_between_issued_leaves() {
    let (root, int) = testutil::chain(KeyKind::P384);
    let chain = SignerChain::from_pem(&int.pem).unwrap();
    let server = identity(&int, &chain, "server.example.com");
    let client = identity(&int, &chain, "client.example.com");
    let (s, c) = handshake(server, client, &root).await;
    assert_eq!(s, Ok(()));
    assert_eq!(c, Ok(()));
}

#[tokio::test]
async fn client_from_other_root_is_refused() {
    let (root, int) = testutil::chain(KeyKind::P256);
    let (_other_root, other_int) = testutil::chain(KeyKind::P256);
    let chain = SignerChain::from_pem(&int.pem).unwrap();
    let other_chain = SignerChain::from_pem(&other_int.pem).unwrap();
    let server = identity(&int, &chain, "server.example.com");
    let client = identity(&other_int, &other_chain, "client.example.com");
    let (s, _c) = handshake(server, client, &root).await;
    let err = s.expect_err("server must refuse the foreign client certificate");
    assert!(err.to_lowercase().contains("certificate"), "{err}");
}
