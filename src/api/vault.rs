//! `spec.vault`: a remote Vault or OpenBao PKI secrets engine. The fields mirror cert-manager's
//! Vault issuer so manifests move over unchanged.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::issuer::KeyRef;

/// Sign through a Vault or OpenBao PKI secrets engine (`<mount>/sign/<role>`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultSignerSpec {
    /// Base URL of the server, e.g. `https://vault.vault.svc:8200`.
    #[schemars(regex(pattern = r"^https?://[^/?#@]+/?$"))]
    pub server: String,
    /// The signing endpoint `<mount>/sign/<role>` (or `<mount>/sign-verbatim/<role>`), e.g.
    /// `pki_int/sign/workloads`.
    #[schemars(regex(
        pattern = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/sign(-verbatim)?/[A-Za-z0-9_.@-]+$"
    ))]
    pub path: String,
    /// Vault Enterprise / OpenBao namespace, sent as the `X-Vault-Namespace` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Base64-encoded PEM bundle of the CAs that sign the server's TLS certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "byte"))]
    pub ca_bundle: Option<String>,
    /// A Secret key holding the PEM bundle of the CAs that sign the server's TLS certificate
    /// (instead of `caBundle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle_secret_ref: Option<KeyRef>,
    /// A Secret key with the client certificate (PEM) for mTLS to the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_secret_ref: Option<KeyRef>,
    /// A Secret key with the client certificate's private key (PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key_secret_ref: Option<KeyRef>,
    /// Per-request timeout (Go duration, default `10s`, at most `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "duration(self) <= duration('60s')", "message": "timeout must be at most 60s"}]))]
    pub timeout: Option<String>,
    /// How to log in: exactly one method.
    pub auth: VaultAuth,
}

/// How the controller authenticates to Vault: exactly one of the methods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.tokenSecretRef), has(self.appRole), has(self.kubernetes)].filter(x, x).size() == 1").message("exactly one of tokenSecretRef, appRole or kubernetes must be set"))]
pub struct VaultAuth {
    /// A Secret key holding a Vault token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<KeyRef>,
    /// AppRole login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_role: Option<VaultAppRole>,
    /// Kubernetes login with a short-lived token of a ServiceAccount (TokenRequest API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<VaultKubernetesAuth>,
}

/// AppRole login (`auth/<path>/login`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultAppRole {
    /// Where the AppRole method is mounted, e.g. `approle`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"))]
    pub path: String,
    /// The role ID.
    #[schemars(length(min = 1))]
    pub role_id: String,
    /// A Secret key holding the secret ID.
    pub secret_ref: KeyRef,
}

/// Kubernetes login (`<mountPath>/login`) with a bound ServiceAccount token.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultKubernetesAuth {
    /// Login path prefix as in cert-manager, default `/v1/auth/kubernetes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/v1/auth/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$"))]
    pub mount_path: Option<String>,
    /// The Vault role to log in as.
    #[schemars(length(min = 1))]
    pub role: String,
    /// The ServiceAccount (in the issuer's resource namespace) whose token is requested.
    pub service_account_ref: VaultServiceAccountRef,
}

/// A ServiceAccount for the TokenRequest API.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VaultServiceAccountRef {
    /// ServiceAccount name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Extra audiences of the token. Like cert-manager, the token always carries the issuer's own
    /// audience, `vault://<namespace>/<name>` (PKIIssuer) or `vault://<name>` (PKIClusterIssuer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audiences: Option<Vec<String>>,
}

/// cert-manager's default Kubernetes auth mount path.
pub const DEFAULT_KUBERNETES_MOUNT_PATH: &str = "/v1/auth/kubernetes";

impl super::references::References for VaultSignerSpec {
    fn references(&self, out: &mut Vec<super::references::Referenced>) {
        use super::references::Referenced::Secret;
        let auth = &self.auth;
        for r in [
            self.ca_bundle_secret_ref.as_ref(),
            self.client_cert_secret_ref.as_ref(),
            self.client_key_secret_ref.as_ref(),
            auth.token_secret_ref.as_ref(),
            auth.app_role.as_ref().map(|a| &a.secret_ref),
        ]
        .into_iter()
        .flatten()
        {
            out.push(Secret(r.name.clone()));
        }
    }
}
