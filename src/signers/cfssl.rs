//! The `cfssl` backend: sign through a remote CFSSL CA (`sign` / `authsign` API).
//!
//! The CA is never trusted: every certificate it returns goes through the same after-signing
//! checks as a locally signed one (a CFSSL that silently drops a URI SAN is caught there).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures::future::BoxFuture;
use futures::FutureExt;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{SignRequest, Signer, SignerError};
use crate::pki::{ParsedCsr, SignerChain};

type HttpClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// How many times one sign call tries a retryable failure before giving up for this reconcile.
pub const RETRY_BUDGET: u32 = 2;

/// Connection settings for a CFSSL CA.
#[derive(Clone)]
pub struct CfsslConfig {
    /// Base URL (`https://cfssl.pki.svc:8888`).
    pub url: String,
    /// Signing profile.
    pub profile: Option<String>,
    /// Signer label (multirootca).
    pub label: Option<String>,
    /// HMAC key for `authsign` (raw bytes, decoded from hex).
    pub auth_key: Option<Vec<u8>>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// TLS settings (trust and optional client certificate) for HTTPS URLs.
    pub tls: Option<rustls::ClientConfig>,
}

impl std::fmt::Debug for CfsslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CfsslConfig")
            .field("url", &self.url)
            .field("profile", &self.profile)
            .field("label", &self.label)
            .field("auth_key", &self.auth_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A CFSSL client.
pub struct CfsslClient {
    config: CfsslConfig,
    http: HttpClient,
    observe: Option<Arc<dyn Fn(Duration) + Send + Sync>>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    success: bool,
    result: Option<T>,
    #[serde(default)]
    errors: Vec<ApiMessage>,
}

#[derive(Deserialize)]
struct ApiMessage {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct CertResult {
    certificate: String,
}

/// What CFSSL's `info` says about the signer and profile.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct Info {
    /// The signer certificate (PEM).
    pub certificate: String,
    /// The profile's usages.
    #[serde(default)]
    pub usages: Vec<String>,
    /// The profile's expiry (Go duration, e.g. `24h0m0s`).
    #[serde(default)]
    pub expiry: Option<String>,
}

#[derive(Serialize)]
struct InnerSignRequest<'a> {
    certificate_request: &'a str,
    hosts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
}

/// The exact body of an `authsign` call for inner request bytes `r`.
pub fn authsign_body(key: &[u8], r: &[u8]) -> serde_json::Value {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(r);
    let b64 = base64::engine::general_purpose::STANDARD;
    serde_json::json!({
        "token": b64.encode(mac.finalize().into_bytes()),
        "request": b64.encode(r),
    })
}

/// The `hosts` CFSSL must put in the certificate: every SAN of the CSR.
pub fn hosts(csr: &ParsedCsr) -> Vec<String> {
    let s = &csr.sans;
    s.dns
        .iter()
        .cloned()
        .chain(s.ips.iter().map(|ip| ip.to_string()))
        .chain(s.emails.iter().cloned())
        .chain(s.uris.iter().cloned())
        .collect()
}

/// Interprets one CFSSL API answer (HTTP `status` and `body` from `url`): the `result` of a
/// successful envelope, else an error naming the HTTP status and the CA's own error messages.
/// The body itself is never echoed: a server that is not a CFSSL CA could be any internal page.
pub fn parse_response<T: DeserializeOwned>(
    url: &str,
    status: StatusCode,
    body: &[u8],
) -> Result<T, SignerError> {
    let envelope: Option<Envelope<T>> = serde_json::from_slice(body).ok();
    let message = || match &envelope {
        Some(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|m| format!("{} (code {})", m.message, m.code))
            .collect::<Vec<_>>()
            .join("; "),
        _ => format!(
            "the answer is not a CFSSL API response ({} bytes)",
            body.len()
        ),
    };
    if status.is_server_error() {
        return Err(SignerError::Unavailable(format!(
            "{url}: HTTP {status}: {}",
            message()
        )));
    }
    if !status.is_success() {
        return Err(SignerError::Refused(format!(
            "HTTP {status}: {}",
            message()
        )));
    }
    match envelope {
        Some(Envelope {
            success: true,
            result: Some(r),
            ..
        }) => Ok(r),
        _ => Err(SignerError::Refused(format!(
            "unexpected answer from {url}: {}",
            message()
        ))),
    }
}

/// Interprets a `sign` / `authsign` answer: the leaf certificate PEM.
pub fn parse_sign_response(
    url: &str,
    status: StatusCode,
    body: &[u8],
) -> Result<String, SignerError> {
    parse_response::<CertResult>(url, status, body).map(|r| r.certificate)
}

/// Interprets an `info` answer.
pub fn parse_info_response(
    url: &str,
    status: StatusCode,
    body: &[u8],
) -> Result<Info, SignerError> {
    parse_response(url, status, body)
}

/// The DER of the (first) PEM certificate CFSSL returned.
pub fn leaf_der(leaf_pem: &str) -> Result<Vec<u8>, SignerError> {
    let block = pem::parse(leaf_pem.as_bytes())
        .map_err(|e| SignerError::Refused(format!("the CA returned no PEM certificate: {e}")))?;
    Ok(block.into_contents())
}

impl CfsslClient {
    /// Build a client; `observe` receives each round trip's duration (for metrics).
    pub fn new(
        config: CfsslConfig,
        observe: Option<Arc<dyn Fn(Duration) + Send + Sync>>,
    ) -> CfsslClient {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let connector = match &config.tls {
            Some(tls) => builder
                .with_tls_config(tls.clone())
                .https_or_http()
                .enable_http1()
                .build(),
            None => builder
                .with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
                .https_or_http()
                .enable_http1()
                .build(),
        };
        CfsslClient {
            config,
            http: Client::builder(TokioExecutor::new()).build(connector),
            observe,
        }
    }

    async fn post<T: for<'de> Deserialize<'de>>(
        &self,
        endpoint: &str,
        body: Vec<u8>,
    ) -> Result<T, SignerError> {
        let url = format!(
            "{}/api/v1/cfssl/{endpoint}",
            self.config.url.trim_end_matches('/')
        );
        let req = hyper::Request::post(&url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SignerError::Refused(format!("invalid CFSSL URL {url}: {e}")))?;
        let started = Instant::now();
        let call = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| SignerError::Unavailable(format!("{url}: {e}")))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| SignerError::Unavailable(format!("{url}: reading the response: {e}")))?
                .to_bytes();
            Ok::<_, SignerError>((status, bytes))
        };
        let result = tokio::time::timeout(self.config.timeout, call).await;
        if let Some(observe) = &self.observe {
            observe(started.elapsed());
        }
        let (status, bytes) = result.map_err(|_| {
            SignerError::Unavailable(format!("{url}: no answer within {:?}", self.config.timeout))
        })??;
        parse_response(&url, status, &bytes)
    }

    /// `info`: the signer certificate and the profile's settings.
    pub async fn info(&self) -> Result<Info, SignerError> {
        let body = serde_json::json!({
            "label": self.config.label.clone().unwrap_or_default(),
            "profile": self.config.profile.clone().unwrap_or_default(),
        });
        self.post("info", serde_json::to_vec(&body).expect("json"))
            .await
    }

    /// `sign` or `authsign`: the leaf (PEM) for a CSR.
    pub async fn sign(&self, csr_pem: &str, hosts: Vec<String>) -> Result<String, SignerError> {
        let inner = InnerSignRequest {
            certificate_request: csr_pem,
            hosts,
            profile: self.config.profile.as_deref(),
            label: self.config.label.as_deref(),
        };
        let r = serde_json::to_vec(&inner).expect("json");
        let (endpoint, body) = match &self.config.auth_key {
            Some(key) => (
                "authsign",
                serde_json::to_vec(&authsign_body(key, &r)).expect("json"),
            ),
            None => ("sign", r),
        };
        let mut attempt = 0;
        loop {
            match self.post::<CertResult>(endpoint, body.clone()).await {
                Err(e) if e.is_retryable() && attempt < RETRY_BUDGET => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                other => return other.map(|r| r.certificate),
            }
        }
    }
}

/// Signs through CFSSL; the chain comes from `info` plus configured intermediates.
pub struct CfsslSigner {
    client: CfsslClient,
    chain: SignerChain,
}

impl CfsslSigner {
    /// A signer whose CA answered `info` with the first certificate of `chain`.
    pub fn new(client: CfsslClient, chain: SignerChain) -> CfsslSigner {
        CfsslSigner { client, chain }
    }
}

impl Signer for CfsslSigner {
    fn backend(&self) -> &'static str {
        "cfssl"
    }

    fn chain(&self) -> &SignerChain {
        &self.chain
    }

    fn exact_validity(&self) -> bool {
        false
    }

    fn sign<'a>(&'a self, req: SignRequest<'a>) -> BoxFuture<'a, Result<Vec<u8>, SignerError>> {
        async move {
            let csr_pem = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", req.csr.der.clone()));
            let leaf_pem = self.client.sign(&csr_pem, hosts(req.csr)).await?;
            leaf_der(&leaf_pem)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authsign_token_is_hmac_of_the_exact_request_bytes() {
        let body = authsign_body(b"secret", br#"{"a":1}"#);
        let b64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(
            b64.decode(body["request"].as_str().unwrap()).unwrap(),
            br#"{"a":1}"#
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
        mac.update(br#"{"a":1}"#);
        let want = b64.encode(mac.finalize().into_bytes());
        assert_eq!(body["token"], want);
        assert_ne!(authsign_body(b"other", br#"{"a":1}"#)["token"], want);
    }

    const URL: &str = "http://ca.test/api/v1/cfssl/sign";

    #[test]
    fn answers_are_classified_by_status_and_envelope() {
        let ok = br#"{"success":true,"result":{"certificate":"PEM"},"errors":[],"messages":[]}"#;
        assert_eq!(
            parse_sign_response(URL, StatusCode::OK, ok),
            Ok("PEM".to_string())
        );
        let refused = br#"{"success":false,"result":null,"errors":[{"code":2400,"message":"invalid token"}]}"#;
        assert_eq!(
            parse_sign_response(URL, StatusCode::BAD_REQUEST, refused),
            Err(SignerError::Refused(
                "HTTP 400 Bad Request: invalid token (code 2400)".into()
            ))
        );
        let failed = br#"{"success":false,"errors":[{"code":5000,"message":"failed to sign"}]}"#;
        assert!(matches!(
            parse_sign_response(URL, StatusCode::INTERNAL_SERVER_ERROR, failed),
            Err(SignerError::Unavailable(m)) if m.contains("failed to sign (code 5000)")
        ));
        let not_success = br#"{"success":false,"result":{"certificate":"PEM"}}"#;
        assert!(matches!(
            parse_sign_response(URL, StatusCode::OK, not_success),
            Err(SignerError::Refused(m)) if m.contains("unexpected answer")
        ));
    }

    /// A URL that is not a CFSSL CA (an internal page): its body never reaches a message.
    #[test]
    fn a_foreign_body_is_never_echoed() {
        let page = b"<html><body>internal dashboard: db password hunter2</body></html>";
        for status in [
            StatusCode::OK,
            StatusCode::NOT_FOUND,
            StatusCode::BAD_GATEWAY,
        ] {
            let err = parse_sign_response(URL, status, page)
                .unwrap_err()
                .to_string();
            assert!(
                !err.contains("hunter2") && !err.contains("dashboard"),
                "{err}"
            );
            assert!(err.contains(&format!("{} bytes", page.len())), "{err}");
        }
    }

    #[test]
    fn leaf_der_takes_the_pem_certificate() {
        let pem = pem::encode(&pem::Pem::new("CERTIFICATE", vec![0x30, 0x00]));
        assert_eq!(leaf_der(&pem), Ok(vec![0x30, 0x00]));
        assert!(matches!(leaf_der("not pem"), Err(SignerError::Refused(_))));
    }

    #[test]
    fn debug_never_shows_the_auth_key() {
        let c = CfsslConfig {
            url: "http://127.0.0.1:1".into(),
            profile: None,
            label: None,
            auth_key: Some(b"topsecretkey".to_vec()),
            timeout: Duration::from_secs(1),
            tls: None,
        };
        let text = format!("{c:?}");
        assert!(!text.contains("topsecretkey") && text.contains("redacted"));
    }
}
