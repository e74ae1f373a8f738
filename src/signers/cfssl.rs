//! The `cfssl` backend: sign through a remote CFSSL CA (`sign` / `authsign` API).
//!
//! The CA is never trusted: every certificate it returns goes through the same after-signing
//! checks as a locally signed one (a CFSSL that silently drops a URI SAN is caught there).

use std::time::Duration;

use base64::Engine;
use futures::future::BoxFuture;
use futures::FutureExt;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::remote::{self, Observer};
use super::{SignRequest, Signer, SignerError};
use crate::pki::{ParsedCsr, SignerChain};

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
    pub auth_key: Option<crate::redacted::Redacted<Vec<u8>>>,
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
            .field("auth_key", &self.auth_key)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A CFSSL client.
pub struct CfsslClient {
    config: CfsslConfig,
    http: reqwest::Client,
    observe: Option<Observer>,
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

/// Parse any CFSSL API answer with HTTP `status`. Only CFSSL's own `errors[].message` texts
/// (cleaned, truncated) and the status reach the error; a body that is not a CFSSL envelope
/// is never quoted. 5xx and 429 are retryable.
fn parse_envelope<T: for<'de> Deserialize<'de>>(
    status: u16,
    body: &[u8],
) -> Result<T, SignerError> {
    let envelope: Option<Envelope<T>> = serde_json::from_slice(body).ok();
    let messages = envelope
        .as_ref()
        .map(|e| {
            remote::join_messages(e.errors.iter().map(|m| m.message.as_str()))
                + &e.errors
                    .first()
                    .filter(|m| m.code != 0)
                    .map(|m| format!(" (code {})", m.code))
                    .unwrap_or_default()
        })
        .filter(|m| !m.trim().is_empty());
    let detail = || match (&envelope, &messages) {
        (_, Some(m)) => format!("{}: {m}", remote::status_text(status)),
        (Some(_), None) => format!("{} without an error message", remote::status_text(status)),
        (None, None) => format!(
            "{} with an answer that is not a CFSSL API response",
            remote::status_text(status)
        ),
    };
    if remote::is_retryable_status(status) {
        return Err(SignerError::Unavailable(detail()));
    }
    if !(200..300).contains(&status) {
        return Err(SignerError::Refused(detail()));
    }
    match envelope {
        Some(Envelope {
            success: true,
            result: Some(r),
            ..
        }) => Ok(r),
        _ => Err(SignerError::Refused(detail())),
    }
}

/// Parse the answer of CFSSL `sign` / `authsign`: the leaf certificate (DER). The answer must
/// be a successful CFSSL envelope whose `result.certificate` is exactly one PEM certificate.
pub fn parse_sign_response(status: u16, body: &[u8]) -> Result<Vec<u8>, SignerError> {
    let result: CertResult = parse_envelope(status, body)?;
    let blocks = pem::parse_many(result.certificate.as_bytes())
        .map_err(|_| SignerError::Refused("the CA's certificate is not valid PEM".into()))?;
    match blocks.as_slice() {
        [one] if one.tag() == "CERTIFICATE" => Ok(one.contents().to_vec()),
        [] => Err(SignerError::Refused(
            "the CA returned no certificate".into(),
        )),
        [_] => Err(SignerError::Refused(
            "the CA returned a PEM block that is not a CERTIFICATE".into(),
        )),
        more => Err(SignerError::Refused(format!(
            "the CA returned {} PEM blocks where one certificate was expected",
            more.len()
        ))),
    }
}

/// Parse the answer of CFSSL `info`.
pub fn parse_info_response(status: u16, body: &[u8]) -> Result<Info, SignerError> {
    parse_envelope(status, body)
}

impl CfsslClient {
    /// Build a client; `observe` receives each round trip's duration (for metrics).
    pub fn new(config: CfsslConfig, observe: Option<Observer>) -> Result<CfsslClient, String> {
        let http = remote::client(config.tls.clone(), config.timeout)?;
        Ok(CfsslClient {
            config,
            http,
            observe,
        })
    }

    async fn post(&self, endpoint: &str, body: Vec<u8>) -> Result<remote::Answer, SignerError> {
        let url = format!(
            "{}/api/v1/cfssl/{endpoint}",
            self.config.url.trim_end_matches('/')
        );
        let req = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        remote::send(req, &url, self.config.timeout, self.observe.as_ref()).await
    }

    /// `info`: the signer certificate and the profile's settings.
    pub async fn info(&self) -> Result<Info, SignerError> {
        let body = serde_json::json!({
            "label": self.config.label.clone().unwrap_or_default(),
            "profile": self.config.profile.clone().unwrap_or_default(),
        });
        let a = self
            .post("info", serde_json::to_vec(&body).expect("json"))
            .await?;
        parse_info_response(a.status, &a.body)
    }

    /// `sign` or `authsign`: the leaf (DER) for a CSR.
    pub async fn sign(&self, csr_pem: &str, hosts: Vec<String>) -> Result<Vec<u8>, SignerError> {
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
            let result = match self.post(endpoint, body.clone()).await {
                Ok(a) => parse_sign_response(a.status, &a.body),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if e.is_retryable() && attempt < RETRY_BUDGET => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                other => return other,
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

    fn needs_csr_bytes(&self) -> bool {
        true
    }

    fn chain(&self) -> &SignerChain {
        &self.chain
    }

    fn remote_url(&self) -> Option<&str> {
        Some(&self.client.config.url)
    }

    fn exact_validity(&self) -> bool {
        false
    }

    fn sign<'a>(&'a self, req: SignRequest<'a>) -> BoxFuture<'a, Result<Vec<u8>, SignerError>> {
        async move {
            let csr_pem = pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", req.csr.der.clone()));
            self.client.sign(&csr_pem, hosts(req.csr)).await
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

    #[test]
    fn debug_never_shows_the_auth_key() {
        let c = CfsslConfig {
            url: "http://127.0.0.1:1".into(),
            profile: None,
            label: None,
            auth_key: Some(b"topsecretkey".to_vec().into()),
            timeout: Duration::from_secs(1),
            tls: None,
        };
        let text = format!("{c:?}");
        assert!(!text.contains("topsecretkey") && text.contains("redacted"));
    }

    #[test]
    fn answers_that_are_not_cfssl_envelopes_are_never_quoted() {
        let page = b"<html>internal admin page: secret=hunter2</html>";
        for status in [200, 404, 500] {
            let e = parse_sign_response(status, page).unwrap_err();
            let text = e.to_string();
            assert!(
                !text.contains("hunter2") && !text.contains("html"),
                "{text}"
            );
            assert!(text.contains(&format!("HTTP {status}")), "{text}");
            assert_eq!(e.is_retryable(), status == 500);
        }
    }

    #[test]
    fn cfssl_error_messages_are_cleaned_and_bounded() {
        let body = serde_json::json!({"success": false, "result": null, "errors": [
            {"code": 2400, "message": format!("bad\n\u{1b}[31mrequest {}", "x".repeat(400))}
        ]});
        let e = parse_sign_response(400, body.to_string().as_bytes()).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("HTTP 400 Bad Request: bad [31mrequest xxx"),
            "{text}"
        );
        assert!(
            text.contains("(code 2400)") && !text.contains('\u{1b}'),
            "{text}"
        );
        assert!(text.len() < 400, "{text}");
        assert!(matches!(e, SignerError::Refused(_)));
        let e = parse_sign_response(429, body.to_string().as_bytes()).unwrap_err();
        assert!(e.is_retryable());
    }

    #[test]
    fn sign_answer_needs_exactly_one_certificate() {
        let cert = |pem: &str| {
            serde_json::json!({"success": true, "result": {"certificate": pem}, "errors": []})
                .to_string()
        };
        let block = pem::encode(&pem::Pem::new("CERTIFICATE", vec![1, 2, 3]));
        assert_eq!(
            parse_sign_response(200, cert(&block).as_bytes()).unwrap(),
            vec![1, 2, 3]
        );
        for bad in [
            String::new(),
            format!("{block}{block}"),
            pem::encode(&pem::Pem::new("PRIVATE KEY", vec![1])),
        ] {
            assert!(
                parse_sign_response(200, cert(&bad).as_bytes()).is_err(),
                "{bad}"
            );
        }
        let failed =
            serde_json::json!({"success": false, "result": {"certificate": block}, "errors": []});
        assert!(parse_sign_response(200, failed.to_string().as_bytes()).is_err());
    }
}
