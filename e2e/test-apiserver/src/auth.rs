//! Bearer-token authentication: the admin token and ServiceAccount tokens minted by TokenRequest.

use std::collections::HashMap;

use parking_lot::Mutex;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// User name.
    pub name: String,
    /// Group memberships.
    pub groups: Vec<String>,
    /// For ServiceAccount tokens: (namespace, name, uid of the ServiceAccount).
    pub service_account: Option<(String, String, String)>,
}

impl UserInfo {
    /// The built-in administrator.
    pub fn admin() -> UserInfo {
        UserInfo {
            name: "admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            service_account: None,
        }
    }
    /// The user a ServiceAccount token authenticates as.
    pub fn service_account(ns: &str, name: &str, uid: &str) -> UserInfo {
        UserInfo {
            name: format!("system:serviceaccount:{ns}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ],
            service_account: Some((ns.into(), name.into(), uid.into())),
        }
    }
    /// Member of `system:masters`.
    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

/// A minted ServiceAccount token.
#[derive(Debug, Clone)]
pub struct SaToken {
    /// Namespace of the ServiceAccount.
    pub namespace: String,
    /// Name of the ServiceAccount.
    pub name: String,
    /// UID of the ServiceAccount at minting time (token dies with the account).
    pub uid: String,
    /// Expiry, unix seconds.
    pub expires: i64,
    /// Audiences (`aud`) the token was minted for.
    pub audiences: Vec<String>,
}

/// The audience of tokens minted without one (kube-apiserver's default issuer audience).
pub const DEFAULT_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

/// Token database.
#[derive(Debug)]
pub struct Authenticator {
    admin_token: String,
    sa_tokens: Mutex<HashMap<String, SaToken>>,
    user_tokens: Mutex<HashMap<String, UserInfo>>,
}

impl Authenticator {
    /// New authenticator with a random admin token.
    pub fn new() -> Authenticator {
        Authenticator {
            admin_token: crate::util::random_token(40),
            sa_tokens: Mutex::new(HashMap::new()),
            user_tokens: Mutex::new(HashMap::new()),
        }
    }
    /// Mint a static token for `user` (like a kube-apiserver token file entry).
    pub fn mint_user(&self, user: UserInfo) -> String {
        let token = crate::util::random_token(40);
        self.user_tokens.lock().insert(token.clone(), user);
        token
    }
    /// The admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }
    /// Mint a token for a ServiceAccount; returns the token string.
    pub fn mint(&self, t: SaToken) -> String {
        // Shaped like a JWT (three base64url segments) so clients that sniff the format are happy; it is opaque.
        use base64::Engine;
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = enc.encode(br#"{"alg":"RS256","kid":"test-apiserver"}"#);
        let claims = enc.encode(
            serde_json::json!({
                "iss": "https://kubernetes.default.svc.cluster.local",
                "sub": format!("system:serviceaccount:{}:{}", t.namespace, t.name),
                "aud": t.audiences,
                "iat": jiff::Timestamp::now().as_second(),
                "nbf": jiff::Timestamp::now().as_second(),
                "exp": t.expires,
                "kubernetes.io": {"namespace": t.namespace, "serviceaccount": {"name": t.name, "uid": t.uid}},
            })
            .to_string(),
        );
        let token = format!("{header}.{claims}.{}", crate::util::random_token(43));
        self.sa_tokens.lock().insert(token.clone(), t);
        token
    }
    /// Look up a bearer token. SA tokens are returned raw so the caller can check the account still exists.
    pub fn lookup(&self, token: &str) -> Option<Result<UserInfo, SaToken>> {
        if token == self.admin_token {
            return Some(Ok(UserInfo::admin()));
        }
        if let Some(u) = self.user_tokens.lock().get(token) {
            return Some(Ok(u.clone()));
        }
        let t = self.sa_tokens.lock().get(token).cloned()?;
        if t.expires < jiff::Timestamp::now().as_second() {
            return None;
        }
        Some(Err(t))
    }
}

impl Default for Authenticator {
    fn default() -> Self {
        Authenticator::new()
    }
}

/// Extract the bearer token from an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, tok) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(tok.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_and_sa_tokens() {
        let a = Authenticator::new();
        assert_eq!(
            a.lookup(a.admin_token()).unwrap().unwrap(),
            UserInfo::admin()
        );
        assert!(a.lookup("nope").is_none());
        let tok = a.mint(SaToken {
            namespace: "ns".into(),
            name: "sa".into(),
            uid: "u".into(),
            expires: i64::MAX,
            audiences: vec![DEFAULT_AUDIENCE.into()],
        });
        assert_eq!(tok.split('.').count(), 3);
        let t = a.lookup(&tok).unwrap().unwrap_err();
        assert_eq!((t.namespace.as_str(), t.name.as_str()), ("ns", "sa"));
        let expired = a.mint(SaToken {
            namespace: "ns".into(),
            name: "sa".into(),
            uid: "u".into(),
            expires: 0,
            audiences: vec![],
        });
        assert!(a.lookup(&expired).is_none());
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        let alice = UserInfo {
            name: "alice".into(),
            groups: vec!["system:masters".into()],
            service_account: None,
        };
        let tok = a.mint_user(alice.clone());
        assert_eq!(a.lookup(&tok).unwrap().unwrap(), alice);
    }
}
