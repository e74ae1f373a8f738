//! The `vault` backend: sign through a Vault or OpenBao PKI secrets engine
//! (`<mount>/sign/<role>`). Like every remote CA it is never trusted: the leaf goes through
//! the shared after-signing checks, and the chain written is the mount's CA chain as checked
//! against the trust anchors at the issuer check (without the root), not the `ca_chain` of a
//! sign answer.

pub mod auth;
pub mod client;
pub mod health;
pub mod response;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures::future::BoxFuture;
use futures::FutureExt;

use self::auth::Auth;
use self::client::{VaultClient, VaultConfig};
use self::response::Token;
use super::load::{text_key, LoadError, LoadOptions, ObjectSource};
use super::remote;
use super::{SignRequest, Signer, SignerError};
use crate::api::vault::{VaultSignerSpec, DEFAULT_KUBERNETES_MOUNT_PATH};
use crate::pki::{self, Policy, SignerChain};

/// How much later than the requested notAfter a Vault certificate may end: Vault counts the
/// TTL from its own clock (request latency plus clock skew).
pub const VALIDITY_TOLERANCE: Duration = Duration::from_secs(60);

/// Signs through Vault; the chain is the mount's CA chain from the issuer check.
pub struct VaultSigner {
    client: Arc<VaultClient>,
    chain: SignerChain,
}

impl VaultSigner {
    /// A signer for a checked mount.
    pub fn new(client: Arc<VaultClient>, chain: SignerChain) -> VaultSigner {
        VaultSigner { client, chain }
    }
}

impl Signer for VaultSigner {
    fn backend(&self) -> &'static str {
        "vault"
    }

    fn names_from_csr_only(&self) -> bool {
        true
    }

    fn needs_csr_bytes(&self) -> bool {
        true
    }

    fn chain(&self) -> &SignerChain {
        &self.chain
    }

    fn remote_url(&self) -> Option<&str> {
        Some(self.client.server())
    }

    fn validity_tolerance(&self) -> Duration {
        VALIDITY_TOLERANCE
    }

    fn sign<'a>(&'a self, req: SignRequest<'a>) -> BoxFuture<'a, Result<Vec<u8>, SignerError>> {
        async move {
            let body = client::sign_body(req.csr, req.template, time::OffsetDateTime::now_utc());
            let signed = self.client.sign(&body).await?;
            Ok(signed.leaf_der)
        }
        .boxed()
    }
}

/// Whether a certificate is self-signed (subject equals issuer): a root, left out of chains.
fn is_self_signed(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
        .unwrap_or(false)
}

/// The token audience cert-manager gives an issuer: `vault://<namespace>/<name>` or
/// `vault://<name>` for cluster issuers.
pub fn default_audience(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("vault://{ns}/{name}"),
        None => format!("vault://{name}"),
    }
}

async fn secret_key(
    src: &dyn ObjectSource,
    field: &str,
    r: &crate::api::issuer::KeyRef,
) -> Result<String, LoadError> {
    let ns = src.namespace().to_string();
    let data = src
        .secret(&r.name)
        .await?
        .ok_or_else(|| LoadError::Missing(format!("{field}: Secret {ns}/{} not found", r.name)))?;
    text_key(&data, &r.key, "Secret", &ns, &r.name)
}

/// `Ok` when every `/`-separated segment of a Vault API path field is plain: letters,
/// digits, `_`, `-`, `.`, and never `.` or `..` (which the URL parser would resolve to
/// another path on the same server, e.g. `sys/...`).
pub fn check_api_path(field: &str, path: &str) -> Result<(), LoadError> {
    let ok = !path.is_empty()
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        });
    if ok {
        return Ok(());
    }
    let shown: String = path.chars().take(120).collect();
    Err(LoadError::Invalid(format!(
        "{field} {shown:?} must be path segments of letters, digits, '_', '-' and '.', without empty, '.' or '..' segments"
    )))
}

async fn auth_from_spec(
    spec: &VaultSignerSpec,
    src: &dyn ObjectSource,
    opts: &LoadOptions,
) -> Result<Auth, LoadError> {
    let a = &spec.auth;
    match (&a.token_secret_ref, &a.app_role, &a.kubernetes) {
        (Some(r), None, None) => {
            let token = secret_key(src, "vault.auth.tokenSecretRef", r).await?;
            let token = token.trim().to_string();
            if token.is_empty() || token.chars().any(|c| c.is_control()) {
                return Err(LoadError::Invalid(format!(
                    "vault.auth.tokenSecretRef: Secret {}/{} key {:?} holds no usable token",
                    src.namespace(),
                    r.name,
                    r.key
                )));
            }
            Ok(Auth::Token(Token(token.into())))
        }
        (None, Some(ar), None) => {
            check_api_path("vault.auth.appRole.path", ar.path.trim_matches('/'))?;
            let secret_id = secret_key(src, "vault.auth.appRole.secretRef", &ar.secret_ref).await?;
            Ok(Auth::AppRole {
                path: ar.path.clone(),
                role_id: ar.role_id.clone(),
                secret_id: Token(secret_id.trim().into()),
            })
        }
        (None, None, Some(k)) => {
            let mount_path = k
                .mount_path
                .clone()
                .unwrap_or_else(|| DEFAULT_KUBERNETES_MOUNT_PATH.into());
            let below = mount_path.trim_end_matches('/').strip_prefix("/v1/auth/");
            match below {
                Some(rest) => check_api_path("vault.auth.kubernetes.mountPath", rest)?,
                None => {
                    return Err(LoadError::Invalid(
                        "vault.auth.kubernetes.mountPath must start with /v1/auth/".into(),
                    ))
                }
            }
            crate::api::check_object_name(
                "vault.auth.kubernetes.serviceAccountRef: ServiceAccount",
                &k.service_account_ref.name,
            )
            .map_err(LoadError::Invalid)?;
            let tokens = src.service_account_tokens().ok_or_else(|| {
                LoadError::Invalid(
                    "vault.auth.kubernetes: this controller cannot request ServiceAccount tokens"
                        .into(),
                )
            })?;
            let mut audiences = vec![opts.audience.clone()];
            for extra in k.service_account_ref.audiences.iter().flatten() {
                if !audiences.contains(extra) {
                    audiences.push(extra.clone());
                }
            }
            Ok(Auth::Kubernetes {
                mount_path,
                role: k.role.clone(),
                service_account: k.service_account_ref.name.clone(),
                audiences,
                tokens,
            })
        }
        _ => Err(LoadError::Invalid(
            "vault.auth: exactly one of tokenSecretRef, appRole or kubernetes must be set".into(),
        )),
    }
}

async fn tls_from_spec(
    spec: &VaultSignerSpec,
    src: &dyn ObjectSource,
) -> Result<Option<rustls::ClientConfig>, LoadError> {
    if !spec.server.starts_with("https://") {
        if spec.client_cert_secret_ref.is_some() || spec.client_key_secret_ref.is_some() {
            return Err(LoadError::Invalid(
                "vault: a client certificate needs an https:// server".into(),
            ));
        }
        return Ok(None);
    }
    let ca_pem = match (&spec.ca_bundle, &spec.ca_bundle_secret_ref) {
        (Some(b64), None) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| LoadError::Invalid("vault.caBundle is not base64".into()))?;
            String::from_utf8(bytes)
                .map_err(|_| LoadError::Invalid("vault.caBundle is not PEM text".into()))?
        }
        (None, Some(r)) => secret_key(src, "vault.caBundleSecretRef", r).await?,
        (None, None) => {
            return Err(LoadError::Invalid(
                "vault.caBundle or vault.caBundleSecretRef is required for an https:// server"
                    .into(),
            ))
        }
        (Some(_), Some(_)) => {
            return Err(LoadError::Invalid(
                "vault: set only one of caBundle and caBundleSecretRef".into(),
            ))
        }
    };
    let client = match (&spec.client_cert_secret_ref, &spec.client_key_secret_ref) {
        (Some(c), Some(k)) => Some((
            secret_key(src, "vault.clientCertSecretRef", c).await?,
            secret_key(src, "vault.clientKeySecretRef", k).await?,
        )),
        (None, None) => None,
        _ => {
            return Err(LoadError::Invalid(
                "vault: clientCertSecretRef and clientKeySecretRef go together".into(),
            ))
        }
    };
    remote::tls::config(
        &ca_pem,
        client.as_ref().map(|(c, k)| remote::tls::ClientCert {
            cert_pem: c,
            key_pem: k,
        }),
    )
    .map(Some)
    .map_err(|e| LoadError::Invalid(format!("vault: {e}")))
}

/// Build and check a Vault signer: health, login, role against the policy, CA chain.
/// Returns the signer and notes for the Ready message.
pub async fn load_vault(
    spec: &VaultSignerSpec,
    src: &dyn ObjectSource,
    policy: &Policy,
    opts: &LoadOptions,
) -> Result<(VaultSigner, Vec<String>), LoadError> {
    let (mount, verbatim, role) = client::split_path(&spec.path).map_err(LoadError::Invalid)?;
    let timeout = super::load::remote_timeout("vault.timeout", spec.timeout.as_deref())?;
    let tls = tls_from_spec(spec, src).await?;
    let auth = auth_from_spec(spec, src, opts).await?;
    let client = VaultClient::new(
        VaultConfig {
            server: spec.server.clone(),
            mount: mount.clone(),
            role: role.clone(),
            verbatim,
            namespace: spec.namespace.clone().filter(|n| !n.is_empty()),
            timeout,
            tls,
        },
        auth,
        opts.observe.clone(),
    )
    .map_err(|e| LoadError::Invalid(format!("vault: {e}")))?;
    health::check_health(&client).await?;
    let method = client.auth().describe();
    client
        .authenticate()
        .await
        .map_err(|e| health::load_error(&format!("Vault login ({method})"), e))?;
    let role_path = format!("{mount}/roles/{role}");
    let role_spec = client
        .read_role()
        .await
        .map_err(|e| health::load_error(&format!("reading Vault role {role_path}"), e))?;
    // sign-verbatim takes the names from the CSR whatever the role's use_csr_sans says.
    let role_spec = response::Role {
        use_csr_sans: role_spec.use_csr_sans || verbatim,
        ..role_spec
    };
    let report = health::check_role(&role, &role_spec, policy);
    if !report.blocking.is_empty() {
        return Err(LoadError::Invalid(report.blocking.join("; ")));
    }
    let chain_der: Vec<Vec<u8>> = client
        .ca_chain()
        .await
        .map_err(|e| health::load_error(&format!("reading {mount}/cert/ca_chain"), e))?
        .into_iter()
        .filter(|d| !is_self_signed(d))
        .collect();
    if chain_der.is_empty() {
        return Err(LoadError::Invalid(format!(
            "{mount}/cert/ca_chain holds only a self-signed root: pki-issuer signs with intermediates"
        )));
    }
    let chain_pem = pki::certs_to_pem(&chain_der);
    let chain = SignerChain::from_pem(&chain_pem)
        .map_err(|e| LoadError::Invalid(format!("{mount}/cert/ca_chain: {e}")))?;
    Ok((VaultSigner::new(Arc::new(client), chain), report.notes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_never_climb() {
        for ok in ["approle", "teams/a/approle", "k8s.prod", "kubernetes"] {
            assert!(check_api_path("f", ok).is_ok(), "{ok}");
        }
        for bad in [
            "..",
            "../../sys/raw",
            "approle/../../sys/mounts",
            "a/./b",
            "a//b",
            "",
            "a%2e%2e",
            "a\\..",
            "a?b",
            "a#b",
        ] {
            assert!(check_api_path("f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn audiences_like_cert_manager() {
        assert_eq!(default_audience(Some("apps"), "v"), "vault://apps/v");
        assert_eq!(default_audience(None, "v"), "vault://v");
    }
}
