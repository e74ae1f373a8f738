//! The Vault/OpenBao HTTP client: one reqwest client per issuer, the login token cached until
//! shortly before its lease ends, and one re-login when Vault answers 403.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::auth::{refresh_after, Auth};
use super::response::{self, Health, Role, Signed, Token, VaultError};
use crate::pki::{ClampReason, LeafTemplate, ParsedCsr};
use crate::signers::remote::{self, Observer};

/// Where and how to reach the PKI mount.
#[derive(Clone)]
pub struct VaultConfig {
    /// Base URL (`https://vault.vault.svc:8200`).
    pub server: String,
    /// PKI mount (`pki_int`).
    pub mount: String,
    /// Role name.
    pub role: String,
    /// `sign-verbatim` instead of `sign`.
    pub verbatim: bool,
    /// `X-Vault-Namespace`.
    pub namespace: Option<String>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// TLS trust and client certificate for `https://` servers.
    pub tls: Option<rustls::ClientConfig>,
}

impl std::fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultConfig")
            .field("server", &self.server)
            .field("mount", &self.mount)
            .field("role", &self.role)
            .field("verbatim", &self.verbatim)
            .field("namespace", &self.namespace)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Split `spec.vault.path` (`<mount>/sign/<role>` or `<mount>/sign-verbatim/<role>`) into
/// mount, verbatim flag and role.
pub fn split_path(path: &str) -> Result<(String, bool, String), String> {
    let path = path.trim_matches('/');
    let bad = || {
        format!(
            "spec.vault.path {path:?} must be <mount>/sign/<role> or <mount>/sign-verbatim/<role>"
        )
    };
    let (rest, role) = path.rsplit_once('/').ok_or_else(bad)?;
    let (mount, op) = rest.rsplit_once('/').ok_or_else(bad)?;
    let verbatim = match op {
        "sign" => false,
        "sign-verbatim" => true,
        _ => return Err(bad()),
    };
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
    };
    if !segment_ok(role) || !mount.split('/').all(segment_ok) {
        return Err(bad());
    }
    Ok((mount.to_string(), verbatim, role.to_string()))
}

/// The body of `<mount>/sign/<role>` for a checked request: the CSR, `common_name` only when
/// the validated subject has one, and the lifetime. No SAN list field (`alt_names`,
/// `ip_sans`, `uri_sans`, `other_sans`) is ever sent: Vault splits them at commas, so a
/// comma inside an email local part or a URI would become another name. The role must have
/// `use_csr_sans=true` (checked with the issuer), so Vault takes the names from the CSR's
/// DER, exactly the names pki-issuer checked. The lifetime is `ttl`
/// (counted from Vault's clock); when the chain's notAfter clamped it, the exact `not_after`
/// instead, so Vault is never asked to outlive its CA.
pub fn sign_body(csr: &ParsedCsr, template: &LeafTemplate, now: time::OffsetDateTime) -> Value {
    let csr_pem = pem::encode_config(
        &pem::Pem::new("CERTIFICATE REQUEST", csr.der.clone()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    );
    let mut body = json!({
        "csr": csr_pem,
        "exclude_cn_from_sans": true,
        "format": "pem",
    });
    if let Some(cn) = &template.common_name {
        body["common_name"] = json!(cn);
    }
    let v = &template.validity;
    if v.clamped_by == ClampReason::SignerExpiry {
        let at = v
            .not_after
            .to_offset(time::UtcOffset::UTC)
            .replace_nanosecond(0)
            .unwrap_or(v.not_after);
        body["not_after"] = json!(at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default());
    } else {
        let secs = (v.not_after - now).whole_seconds().max(1);
        body["ttl"] = json!(format!("{secs}s"));
    }
    body
}

struct CachedToken {
    token: Token,
    refresh_at: Option<Instant>,
}

/// A client for one issuer's PKI mount.
pub struct VaultClient {
    config: VaultConfig,
    http: reqwest::Client,
    auth: Auth,
    token: Mutex<Option<CachedToken>>,
    observe: Option<Observer>,
}

impl VaultClient {
    /// The server's base URL.
    pub fn server(&self) -> &str {
        &self.config.server
    }

    /// Build a client; `observe` receives each round trip's duration (for metrics).
    pub fn new(
        config: VaultConfig,
        auth: Auth,
        observe: Option<Observer>,
    ) -> Result<VaultClient, String> {
        let http = remote::client(config.tls.clone(), config.timeout)?;
        Ok(VaultClient {
            config,
            http,
            auth,
            token: Mutex::new(None),
            observe,
        })
    }

    /// The connection settings.
    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    /// The login method.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.server.trim_end_matches('/'))
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&Token>,
    ) -> Result<remote::Answer, VaultError> {
        let url = self.url(path);
        let mut req = self.http.request(method, &url);
        if let Some(ns) = &self.config.namespace {
            req = req.header("X-Vault-Namespace", ns);
        }
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t.0.expose());
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Ok(remote::send(req, &url, self.config.timeout, self.observe.as_ref()).await?)
    }

    async fn login(&self) -> Result<CachedToken, VaultError> {
        let call = match self.auth.login_call().await {
            Ok(Some(call)) => call,
            Ok(None) => {
                let Auth::Token(t) = &self.auth else {
                    unreachable!("only static tokens have no login call")
                };
                return Ok(CachedToken {
                    token: t.clone(),
                    refresh_at: None,
                });
            }
            Err(e) => return Err(VaultError::Unavailable(e)),
        };
        let a = self
            .request(Method::POST, &call.path, Some(&call.body), None)
            .await?;
        // A refused login is a credential problem of the issuer, not of a request.
        let login = response::parse_login_response(a.status, &a.body).map_err(|e| match e {
            VaultError::Denied(m) | VaultError::Refused(m) => {
                VaultError::Denied(format!("{} failed: {m}", call.what))
            }
            VaultError::Unavailable(m) => VaultError::Unavailable(format!("{}: {m}", call.what)),
        })?;
        Ok(CachedToken {
            token: login.token,
            refresh_at: refresh_after(login.lease).map(|d| Instant::now() + d),
        })
    }

    /// The cached token, or a fresh login when there is none or it is about to expire.
    async fn token(&self, fresh: bool) -> Result<Token, VaultError> {
        let mut cached = self.token.lock().await;
        let usable = cached
            .as_ref()
            .is_some_and(|c| c.refresh_at.is_none_or(|at| Instant::now() < at));
        if fresh || !usable {
            *cached = Some(self.login().await?);
        }
        Ok(cached.as_ref().expect("just set").token.clone())
    }

    /// Make an authenticated call; a 403 triggers one fresh login and one retry.
    async fn authed(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<remote::Answer, VaultError> {
        let token = self.token(false).await?;
        let a = self
            .request(method.clone(), path, body, Some(&token))
            .await?;
        if a.status != 403 || matches!(self.auth, Auth::Token(_)) {
            return Ok(a);
        }
        let token = self.token(true).await?;
        self.request(method, path, body, Some(&token)).await
    }

    /// Log in (or check the static token) and return nothing: the issuer check's auth step.
    pub async fn authenticate(&self) -> Result<(), VaultError> {
        self.token(false).await.map(|_| ())
    }

    /// `sys/health` (unauthenticated).
    pub async fn health(&self) -> Result<Health, VaultError> {
        let a = self
            .request(Method::GET, "/v1/sys/health", None, None)
            .await?;
        Ok(response::parse_health_response(a.status, &a.body))
    }

    /// `<mount>/roles/<role>`.
    pub async fn read_role(&self) -> Result<Role, VaultError> {
        let path = format!("/v1/{}/roles/{}", self.config.mount, self.config.role);
        let a = self.authed(Method::GET, &path, None).await?;
        response::parse_role_response(a.status, &a.body)
    }

    /// `<mount>/cert/ca_chain`: the default issuer's chain (DER).
    pub async fn ca_chain(&self) -> Result<Vec<Vec<u8>>, VaultError> {
        let path = format!("/v1/{}/cert/ca_chain", self.config.mount);
        let a = self.authed(Method::GET, &path, None).await?;
        response::parse_ca_chain_response(a.status, &a.body)
    }

    /// `<mount>/sign/<role>` (or `sign-verbatim`) with a body from [`sign_body`].
    pub async fn sign(&self, body: &Value) -> Result<Signed, VaultError> {
        let op = if self.config.verbatim {
            "sign-verbatim"
        } else {
            "sign"
        };
        let path = format!("/v1/{}/{op}/{}", self.config.mount, self.config.role);
        let a = self.authed(Method::POST, &path, Some(body)).await?;
        response::parse_sign_response(a.status, &a.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_bodies_carry_no_name_lists_only_the_csr() {
        use crate::pki::testutil::{csr, KeyKind};
        use crate::pki::{clamp_validity, parse_csr, RequestedCert};
        let now = time::OffsetDateTime::now_utc();
        for sans in [
            vec!["a,db.kube-system.svc@team-a.example"],
            vec!["x@team-a.example", "web.team-a.svc", "10.0.0.1"],
            vec!["spiffe://cluster.local/ns/team-a/sa/a,spiffe://cluster.local/ns/kube-system/sa/admin"],
        ] {
            let (_, c) = csr(KeyKind::P256, None, &sans);
            let parsed = parse_csr(c.der()).unwrap();
            let req = RequestedCert::from_csr(&parsed, false, vec![], None);
            let v = clamp_validity(now, None, Duration::from_secs(3600), now + time::Duration::days(9)).unwrap();
            let t = LeafTemplate::new(&parsed, &req, v, Default::default()).unwrap();
            let body = sign_body(&parsed, &t, now);
            let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
            for list in ["alt_names", "ip_sans", "uri_sans", "other_sans"] {
                assert!(body.get(list).is_none(), "{list} sent: {keys:?}");
            }
            assert!(body["csr"].as_str().unwrap().contains("CERTIFICATE REQUEST"));
            assert!(!body.to_string().contains("kube-system"), "{body}");
        }
    }

    #[test]
    fn splits_sign_paths() {
        assert_eq!(
            split_path("pki_int/sign/web").unwrap(),
            ("pki_int".into(), false, "web".into())
        );
        assert_eq!(
            split_path("/teams/a/pki/sign-verbatim/r1/").unwrap(),
            ("teams/a/pki".into(), true, "r1".into())
        );
        for bad in [
            "pki/issue/web",
            "sign/web",
            "pki/sign/",
            "pki/sign/../x",
            "../sign/web",
            "pki/sign/a?b",
            "pki//sign/web",
        ] {
            assert!(split_path(bad).is_err(), "{bad}");
        }
    }
}
