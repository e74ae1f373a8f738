//! Pure parsers of Vault/OpenBao API answers. Each takes the HTTP status and the raw body and
//! never quotes the body: errors carry the status and Vault's own `errors[]` texts only
//! (cleaned and truncated). Public so fuzz targets can call them.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::signers::remote;
use crate::signers::SignerError;

/// Why a Vault call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// 403: the token is missing, expired or lacks a policy (a fresh login may help once).
    #[error("{0}")]
    Denied(String),
    /// Any other 4xx, or an answer that is not a well-formed Vault answer: permanent.
    #[error("{0}")]
    Refused(String),
    /// 5xx, 429, sealed, or no answer: retryable.
    #[error("{0}")]
    Unavailable(String),
}

impl From<VaultError> for SignerError {
    fn from(e: VaultError) -> SignerError {
        match e {
            VaultError::Denied(m) => SignerError::Credentials(m),
            VaultError::Refused(m) => SignerError::Refused(m),
            VaultError::Unavailable(m) => SignerError::Unavailable(m),
        }
    }
}

impl From<SignerError> for VaultError {
    fn from(e: SignerError) -> VaultError {
        match e {
            SignerError::Unavailable(m) => VaultError::Unavailable(m),
            SignerError::Credentials(m) => VaultError::Denied(m),
            other => VaultError::Refused(other.to_string()),
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<Value>,
}

/// The error of a non-2xx answer: the status plus Vault's `errors[]` messages, if the body
/// is a Vault error document (anything else is never quoted).
pub fn parse_error(status: u16, body: &[u8]) -> VaultError {
    let messages = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| remote::join_messages(b.errors.iter().filter_map(Value::as_str)))
        .filter(|m| !m.is_empty());
    let text = match messages {
        Some(m) => format!("{}: {m}", remote::status_text(status)),
        None => format!(
            "{} without a Vault error message",
            remote::status_text(status)
        ),
    };
    if status == 403 {
        VaultError::Denied(text)
    } else if remote::is_retryable_status(status) {
        VaultError::Unavailable(text)
    } else {
        VaultError::Refused(text)
    }
}

fn not_vault(what: &str) -> VaultError {
    VaultError::Refused(format!(
        "the answer to {what} is not a well-formed Vault API response"
    ))
}

/// The `data` object of a 2xx answer, or the error for any other.
fn data<T: for<'de> Deserialize<'de>>(
    status: u16,
    body: &[u8],
    what: &str,
) -> Result<T, VaultError> {
    if !(200..300).contains(&status) {
        return Err(parse_error(status, body));
    }
    #[derive(Deserialize)]
    struct Envelope<T> {
        data: T,
    }
    serde_json::from_slice::<Envelope<T>>(body)
        .map(|e| e.data)
        .map_err(|_| not_vault(what))
}

/// One PEM certificate (exactly one block, tag `CERTIFICATE`) to DER.
fn one_cert(pem_text: &str, what: &str) -> Result<Vec<u8>, VaultError> {
    let blocks = pem::parse_many(pem_text.as_bytes())
        .map_err(|_| VaultError::Refused(format!("{what} is not valid PEM")))?;
    match blocks.as_slice() {
        [one] if one.tag() == "CERTIFICATE" => Ok(one.contents().to_vec()),
        _ => Err(VaultError::Refused(format!(
            "{what} is not exactly one PEM certificate"
        ))),
    }
}

/// Every `CERTIFICATE` block of a PEM text (other blocks refused).
fn certs(pem_text: &str, what: &str) -> Result<Vec<Vec<u8>>, VaultError> {
    let blocks = pem::parse_many(pem_text.as_bytes())
        .map_err(|_| VaultError::Refused(format!("{what} is not valid PEM")))?;
    blocks
        .into_iter()
        .map(|b| {
            if b.tag() == "CERTIFICATE" {
                Ok(b.into_contents())
            } else {
                Err(VaultError::Refused(format!(
                    "{what} holds a PEM block that is not a CERTIFICATE"
                )))
            }
        })
        .collect()
}

/// A PEM chain given either as one string or as a list of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum PemList {
    One(String),
    Many(Vec<String>),
}

impl PemList {
    fn certs(&self, what: &str) -> Result<Vec<Vec<u8>>, VaultError> {
        match self {
            PemList::One(s) => certs(s, what),
            PemList::Many(v) => v.iter().try_fold(Vec::new(), |mut acc, s| {
                acc.extend(certs(s, what)?);
                Ok(acc)
            }),
        }
    }
}

/// What `<mount>/sign/<role>` returned. Nothing here is trusted: the leaf goes through the
/// after-signing checks and the chain written is the one checked at the issuer check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The leaf (DER).
    pub leaf_der: Vec<u8>,
    /// `ca_chain` as Vault sent it (DER), for diagnostics only.
    pub ca_chain_der: Vec<Vec<u8>>,
}

/// Parse the answer of `<mount>/sign/<role>`.
pub fn parse_sign_response(status: u16, body: &[u8]) -> Result<Signed, VaultError> {
    #[derive(Deserialize)]
    struct Data {
        certificate: String,
        #[serde(default)]
        ca_chain: Option<PemList>,
    }
    let d: Data = data(status, body, "sign")?;
    Ok(Signed {
        leaf_der: one_cert(&d.certificate, "the CA's certificate")?,
        ca_chain_der: match d.ca_chain {
            Some(c) => c.certs("the CA's ca_chain")?,
            None => Vec::new(),
        },
    })
}

/// A login's client token. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Token(pub crate::redacted::Redacted<String>);

/// What a login returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// The client token.
    pub token: Token,
    /// How long it lives (`None`: no expiry).
    pub lease: Option<Duration>,
}

/// Parse the answer of `auth/<method>/login`.
pub fn parse_login_response(status: u16, body: &[u8]) -> Result<Login, VaultError> {
    if !(200..300).contains(&status) {
        return Err(parse_error(status, body));
    }
    #[derive(Deserialize)]
    struct Auth {
        client_token: String,
        #[serde(default)]
        lease_duration: u64,
    }
    #[derive(Deserialize)]
    struct Envelope {
        auth: Auth,
    }
    let e: Envelope = serde_json::from_slice(body).map_err(|_| not_vault("login"))?;
    if e.auth.client_token.is_empty() || e.auth.client_token.chars().any(|c| c.is_control()) {
        return Err(VaultError::Refused(
            "the login returned no usable token".into(),
        ));
    }
    Ok(Login {
        token: Token(e.auth.client_token.into()),
        lease: (e.auth.lease_duration > 0).then(|| Duration::from_secs(e.auth.lease_duration)),
    })
}

/// The settings of a PKI role that decide whether requests can succeed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Role {
    /// `rsa`, `ec`, `ed25519` or `any`.
    pub key_type: String,
    /// Allowed URI SAN patterns (globs).
    pub allowed_uri_sans: Vec<String>,
    /// Longest lifetime the role issues (`None`: the mount's default).
    pub max_ttl: Option<Duration>,
    /// Whether the role copies the CSR's SANs (then `alt_names` etc. are ignored).
    pub use_csr_sans: bool,
    /// `key_usage`: the keyUsage bits every certificate of the role carries (Vault's names).
    pub key_usage: Vec<String>,
    /// `ext_key_usage` plus the EKUs of `server_flag`, `client_flag`, `code_signing_flag` and
    /// `email_protection_flag` (Vault's names), and `ext_key_usage_oids` (dotted).
    pub ext_key_usage: Vec<String>,
}

/// Parse the answer of `<mount>/roles/<role>`.
pub fn parse_role_response(status: u16, body: &[u8]) -> Result<Role, VaultError> {
    #[derive(Deserialize)]
    struct Data {
        #[serde(default)]
        key_type: String,
        #[serde(default)]
        allowed_uri_sans: Option<Vec<String>>,
        #[serde(default)]
        max_ttl: Option<Value>,
        #[serde(default)]
        use_csr_sans: Option<bool>,
        #[serde(default)]
        key_usage: Option<Vec<String>>,
        #[serde(default)]
        ext_key_usage: Option<Vec<String>>,
        #[serde(default)]
        ext_key_usage_oids: Option<Vec<String>>,
        #[serde(default)]
        server_flag: Option<bool>,
        #[serde(default)]
        client_flag: Option<bool>,
        #[serde(default)]
        code_signing_flag: Option<bool>,
        #[serde(default)]
        email_protection_flag: Option<bool>,
    }
    let d: Data = data(status, body, "the role")?;
    let mut ext_key_usage = d.ext_key_usage.unwrap_or_default();
    for (flag, default, name) in [
        (d.server_flag, true, "ServerAuth"),
        (d.client_flag, true, "ClientAuth"),
        (d.code_signing_flag, false, "CodeSigning"),
        (d.email_protection_flag, false, "EmailProtection"),
    ] {
        if flag.unwrap_or(default) {
            ext_key_usage.push(name.to_string());
        }
    }
    ext_key_usage.extend(d.ext_key_usage_oids.unwrap_or_default());
    let max_ttl = match d.max_ttl {
        Some(Value::Number(n)) => n.as_u64().filter(|s| *s > 0).map(Duration::from_secs),
        Some(Value::String(s)) => crate::api::duration::parse(&s)
            .ok()
            .filter(|d| !d.is_zero()),
        _ => None,
    };
    Ok(Role {
        key_type: d.key_type,
        allowed_uri_sans: d.allowed_uri_sans.unwrap_or_default(),
        max_ttl,
        use_csr_sans: d.use_csr_sans.unwrap_or(true),
        // Vault's default when the field is absent.
        key_usage: d.key_usage.unwrap_or_else(|| {
            ["DigitalSignature", "KeyAgreement", "KeyEncipherment"]
                .map(String::from)
                .to_vec()
        }),
        ext_key_usage,
    })
}

/// Parse the answer of `<mount>/cert/ca_chain`: the issuer's chain (DER), signer first.
pub fn parse_ca_chain_response(status: u16, body: &[u8]) -> Result<Vec<Vec<u8>>, VaultError> {
    #[derive(Deserialize)]
    struct Data {
        #[serde(default)]
        ca_chain: Option<PemList>,
        #[serde(default)]
        certificate: Option<String>,
    }
    let d: Data = data(status, body, "ca_chain")?;
    let chain = match (d.ca_chain, d.certificate) {
        (Some(c), _) => c.certs("the mount's ca_chain")?,
        (None, Some(c)) => certs(&c, "the mount's CA certificate")?,
        (None, None) => Vec::new(),
    };
    if chain.is_empty() {
        return Err(VaultError::Refused(
            "the PKI mount has no CA certificate: import or generate an issuer first".into(),
        ));
    }
    Ok(chain)
}

/// What `sys/health` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Initialized, unsealed, active.
    Active,
    /// Unsealed standby (requests are forwarded to the active node).
    Standby,
    /// Sealed.
    Sealed,
    /// Not initialized.
    Uninitialized,
    /// Another status (an answer that is not Vault's health document included).
    Unknown(u16),
}

/// Parse the answer of `sys/health` (status codes as Vault documents them, the body's
/// `sealed` / `initialized` / `standby` flags when present).
pub fn parse_health_response(status: u16, body: &[u8]) -> Health {
    #[derive(Deserialize)]
    struct Doc {
        initialized: Option<bool>,
        sealed: Option<bool>,
        standby: Option<bool>,
    }
    let doc = serde_json::from_slice::<Doc>(body).ok();
    let flag = |f: fn(&Doc) -> Option<bool>| doc.as_ref().and_then(f);
    if flag(|d| d.initialized) == Some(false) || status == 501 {
        return Health::Uninitialized;
    }
    if flag(|d| d.sealed) == Some(true) || status == 503 {
        return Health::Sealed;
    }
    match status {
        200 if doc.is_some() => {
            if flag(|d| d.standby) == Some(true) {
                Health::Standby
            } else {
                Health::Active
            }
        }
        429 | 473 => Health::Standby,
        other => Health::Unknown(other),
    }
}

#[cfg(test)]
mod tests;
