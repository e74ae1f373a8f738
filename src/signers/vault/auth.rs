//! How the controller logs in to Vault: a token from a Secret, AppRole, or Kubernetes auth
//! with a short-lived bound ServiceAccount token from the TokenRequest API (never a
//! long-lived Secret token). Secrets never appear in `Debug` output or messages.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::json;

use super::response::Token;

/// Lifetime asked for ServiceAccount tokens (the API server's minimum is 10 minutes).
pub const SERVICE_ACCOUNT_TOKEN_SECONDS: i64 = 600;

/// Mints bound ServiceAccount tokens (the TokenRequest API) in the issuer's resource namespace.
pub trait ServiceAccountTokens: Send + Sync {
    /// A token for ServiceAccount `name` with `audiences`, valid for `seconds`.
    fn token<'a>(
        &'a self,
        name: &'a str,
        audiences: &'a [String],
        seconds: i64,
    ) -> BoxFuture<'a, Result<Token, String>>;
}

/// One login method.
#[derive(Clone)]
pub enum Auth {
    /// A token read from a Secret: used as is, no login.
    Token(Token),
    /// `auth/<path>/login` with a role ID and a secret ID.
    AppRole {
        /// Mount path of the AppRole method (`approle`).
        path: String,
        /// Role ID.
        role_id: String,
        /// Secret ID.
        secret_id: Token,
    },
    /// `<mount_path>/login` with a bound ServiceAccount token.
    Kubernetes {
        /// cert-manager-style login path prefix (`/v1/auth/kubernetes`).
        mount_path: String,
        /// Vault role.
        role: String,
        /// ServiceAccount name.
        service_account: String,
        /// Token audiences.
        audiences: Vec<String>,
        /// Where tokens come from.
        tokens: Arc<dyn ServiceAccountTokens>,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Token(t) => f.debug_tuple("Auth::Token").field(t).finish(),
            Auth::AppRole { path, role_id, .. } => f
                .debug_struct("Auth::AppRole")
                .field("path", path)
                .field("role_id", role_id)
                .finish_non_exhaustive(),
            Auth::Kubernetes {
                mount_path,
                role,
                service_account,
                audiences,
                ..
            } => f
                .debug_struct("Auth::Kubernetes")
                .field("mount_path", mount_path)
                .field("role", role)
                .field("service_account", service_account)
                .field("audiences", audiences)
                .finish_non_exhaustive(),
        }
    }
}

/// A login call to make: the API path (below the server URL) and the JSON body.
pub struct LoginCall {
    /// Path such as `/v1/auth/approle/login`.
    pub path: String,
    /// Body (holds secrets: never log it).
    pub body: serde_json::Value,
    /// Names the method in messages.
    pub what: String,
}

impl Auth {
    /// The method's name for messages.
    pub fn describe(&self) -> String {
        match self {
            Auth::Token(_) => "the token from tokenSecretRef".into(),
            Auth::AppRole { path, .. } => format!("AppRole login at auth/{path}"),
            Auth::Kubernetes {
                mount_path,
                role,
                service_account,
                ..
            } => format!(
                "Kubernetes login at {mount_path} as role {role:?} with ServiceAccount {service_account:?}"
            ),
        }
    }

    /// The login call, or `None` for a static token. Obtains a ServiceAccount token first
    /// for Kubernetes auth.
    pub async fn login_call(&self) -> Result<Option<LoginCall>, String> {
        match self {
            Auth::Token(_) => Ok(None),
            Auth::AppRole {
                path,
                role_id,
                secret_id,
            } => Ok(Some(LoginCall {
                path: format!("/v1/auth/{}/login", path.trim_matches('/')),
                body: json!({"role_id": role_id, "secret_id": secret_id.0.expose()}),
                what: self.describe(),
            })),
            Auth::Kubernetes {
                mount_path,
                role,
                service_account,
                audiences,
                tokens,
            } => {
                let jwt = tokens
                    .token(service_account, audiences, SERVICE_ACCOUNT_TOKEN_SECONDS)
                    .await?;
                Ok(Some(LoginCall {
                    path: format!("{}/login", mount_path.trim_end_matches('/')),
                    body: json!({"role": role, "jwt": jwt.0.expose()}),
                    what: self.describe(),
                }))
            }
        }
    }
}

/// When a login token should be replaced: shortly before its lease ends (at 80 % of the
/// lease, and at least 10 s early); `None` for tokens without expiry.
pub fn refresh_after(lease: Option<Duration>) -> Option<Duration> {
    let lease = lease?;
    let early = (lease / 5).max(Duration::from_secs(10));
    Some(lease.saturating_sub(early))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let a = Auth::AppRole {
            path: "approle".into(),
            role_id: "rid".into(),
            secret_id: Token("sekrit-id".into()),
        };
        assert!(!format!("{a:?}").contains("sekrit"));
        assert!(!format!("{:?}", Auth::Token(Token("hvs.topsecret".into()))).contains("topsecret"));
    }

    #[test]
    fn refresh_before_the_lease_ends() {
        assert_eq!(refresh_after(None), None);
        assert_eq!(
            refresh_after(Some(Duration::from_secs(3600))),
            Some(Duration::from_secs(2880))
        );
        assert_eq!(
            refresh_after(Some(Duration::from_secs(20))),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            refresh_after(Some(Duration::from_secs(5))),
            Some(Duration::ZERO)
        );
    }

    #[tokio::test]
    async fn login_calls() {
        let a = Auth::AppRole {
            path: "/approle/".into(),
            role_id: "rid".into(),
            secret_id: Token("sid".into()),
        };
        let call = a.login_call().await.unwrap().unwrap();
        assert_eq!(call.path, "/v1/auth/approle/login");
        assert_eq!(call.body["secret_id"], "sid");
        assert!(Auth::Token(Token("t".into()))
            .login_call()
            .await
            .unwrap()
            .is_none());
    }
}
