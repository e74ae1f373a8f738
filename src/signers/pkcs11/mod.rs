//! The `pkcs11` backend: the intermediate CA's key lives in a PKCS#11 token (an HSM) and signs
//! there; the signer chain comes from a Secret. The operator allowlists module paths
//! (`--allowed-pkcs11-modules`): an issuer can never make the controller load another library.
//! Namespaced PKIIssuers may use a token only when the operator allows it
//! (`--allow-namespaced-pkcs11`).

mod encoding;
pub mod key;
mod module;
pub mod token;

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;

use self::key::{KeySelector, Scheme, TokenKey};
use super::load::{text_key, LoadError, LoadOptions, ObjectSource};
use super::{SignRequest, Signer, SignerError};
use crate::api::pkcs11::Pkcs11SignerSpec;
use crate::pki::redacted::Redacted;
use crate::pki::{self, IssuerName, PkiError, SignerChain, ValidatedChain};

/// The flag that allowlists modules (for messages).
pub const MODULES_FLAG: &str = "--allowed-pkcs11-modules (PKI_ISSUER_ALLOWED_PKCS11_MODULES)";
/// The flag that lets namespaced PKIIssuers use a token (for messages).
pub const NAMESPACED_FLAG: &str = "--allow-namespaced-pkcs11 (PKI_ISSUER_ALLOW_NAMESPACED_PKCS11)";

/// Why a token could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Pkcs11Error {
    /// The operator's flags do not allow this module or this issuer kind.
    #[error("{0}")]
    NotAllowed(String),
    /// The module could not be loaded or initialised.
    #[error("PKCS#11 module: {0}")]
    Module(String),
    /// No slot holds a token with this label (removed, or not yet initialised).
    #[error("no PKCS#11 token labelled {0:?} is present")]
    TokenNotFound(String),
    /// The token refused the PIN.
    #[error("login: {0}")]
    PinRefused(String),
    /// No key has this label or id.
    #[error("{0}")]
    KeyNotFound(String),
    /// The key is unusable (type, attributes).
    #[error("{0}")]
    Key(String),
    /// The token (or its login or session) went away.
    #[error("token: {0}")]
    Token(String),
    /// Every session of the token stayed busy.
    #[error("{0}")]
    Busy(String),
    /// The signature itself failed.
    #[error("signing in the token: {0}")]
    Signing(String),
}

impl Pkcs11Error {
    /// A failed call that is not about a key (finding slots, opening sessions).
    pub fn token(e: cryptoki::error::Error) -> Pkcs11Error {
        match key::classify(e) {
            Pkcs11Error::Signing(m) => Pkcs11Error::Token(m),
            other => other,
        }
    }

    fn into_load(self, which: &str) -> LoadError {
        let m = format!("pkcs11 {which}: {self}");
        match self {
            Pkcs11Error::TokenNotFound(_)
            | Pkcs11Error::Token(_)
            | Pkcs11Error::Busy(_)
            | Pkcs11Error::KeyNotFound(_) => LoadError::Unavailable(m),
            _ => LoadError::Invalid(m),
        }
    }

    fn into_signer(self) -> SignerError {
        match self {
            Pkcs11Error::Busy(m) => SignerError::Unavailable(m),
            Pkcs11Error::Signing(m) => SignerError::Pki(PkiError::SigningFailed(m)),
            // The token, its login or the key went away: the issuer is re-checked at once and
            // the request waits Pending.
            other => SignerError::SignerDown(other.to_string()),
        }
    }
}

/// The operator's PKCS#11 settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pkcs11Modules {
    /// Module paths issuers may name (absolute, compared exactly). Empty: none.
    pub allowed: Vec<PathBuf>,
    /// Whether namespaced PKIIssuers may use a token.
    pub allow_namespaced: bool,
}

impl Pkcs11Modules {
    /// From the flags: every path absolute and without `.` or `..` components.
    pub fn parse(paths: &[String], allow_namespaced: bool) -> Result<Pkcs11Modules, String> {
        let mut allowed = Vec::new();
        for p in paths.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            check_path(p)?;
            allowed.push(PathBuf::from(p));
        }
        Ok(Pkcs11Modules {
            allowed,
            allow_namespaced,
        })
    }

    /// `Ok` when an issuer of this kind may load `module`; the message names the flag.
    pub fn check(&self, module: &str, namespaced: bool) -> Result<(), String> {
        if namespaced && !self.allow_namespaced {
            return Err(format!(
                "namespaced PKIIssuers may not use PKCS#11 tokens unless the operator allows it with {NAMESPACED_FLAG}; use a PKIClusterIssuer"
            ));
        }
        check_path(module).map_err(|e| format!("pkcs11.module: {e}"))?;
        if self.allowed.is_empty() {
            return Err(format!(
                "no PKCS#11 module is allowed: the operator must list {module:?} in {MODULES_FLAG}"
            ));
        }
        if !self.allowed.iter().any(|a| a == Path::new(module)) {
            return Err(format!(
                "PKCS#11 module {module:?} is not in {MODULES_FLAG}; the library was not loaded"
            ));
        }
        Ok(())
    }
}

fn check_path(p: &str) -> Result<(), String> {
    let path = Path::new(p);
    let plain = path
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && !p.split('/').any(|seg| seg == "." || seg == "..");
    if !path.is_absolute() || !plain || p.contains('\0') {
        return Err(format!(
            "{:?} is not an absolute path without '.' or '..' components",
            p.chars().take(200).collect::<String>()
        ));
    }
    Ok(())
}

/// Signs with a key held in a PKCS#11 token.
pub struct Pkcs11Signer {
    chain: SignerChain,
    token: Arc<TokenSigner>,
    /// The token as a remote-slot endpoint (`pkcs11://<digest of module and label>`).
    endpoint: String,
}

struct TokenSigner {
    key: TokenKey,
    issuer: IssuerName,
}

impl Signer for Pkcs11Signer {
    fn backend(&self) -> &'static str {
        "pkcs11"
    }

    /// A token is a shared, possibly remote (network HSM) and possibly hanging resource: its
    /// signatures take remote-CA slots (per issuer, per token, in total), so a token that
    /// stops answering holds a bounded number of request workers.
    fn remote_url(&self) -> Option<&str> {
        Some(&self.endpoint)
    }

    fn chain(&self) -> &SignerChain {
        &self.chain
    }

    /// The PKCS#11 calls run on a blocking thread ([`crate::cpu::request`]).
    fn sign<'a>(&'a self, req: SignRequest<'a>) -> BoxFuture<'a, Result<Vec<u8>, SignerError>> {
        let token = self.token.clone();
        let (template, csr) = (req.template.clone(), req.csr.clone());
        async move {
            crate::cpu::request(move || {
                let signing = key::Signing::new(&token.key);
                let signed = pki::sign_leaf_as(&template, &csr, &token.issuer, &signing);
                signed.map_err(|e| match signing.into_error() {
                    Some(p) => p.into_signer(),
                    None => SignerError::Pki(e),
                })
            })
            .await
            .unwrap_or_else(|e| Err(SignerError::Pki(PkiError::SigningFailed(e.to_string()))))
        }
        .boxed()
    }
}

/// The token part of issuer checks (login, key, challenge) runs on these threads, not on the
/// shared check threads: a hanging token never stalls other issuers' checks.
static TOKEN_CHECKS: std::sync::LazyLock<crate::cpu::Pool> =
    std::sync::LazyLock::new(|| crate::cpu::Pool::new(2, "PKCS#11 token check"));
/// How long an issuer check waits for its token.
pub const TOKEN_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The issuer check of a `pkcs11` issuer: the allowlist, the chain and PIN from their
/// Secrets, the token and key, a challenge signed in the token and verified with the signer
/// certificate's public key, and the chain to the trust anchors. Returns the signer, the
/// validated chain and notes for the Ready message (the mechanism).
pub async fn load_pkcs11(
    spec: &Pkcs11SignerSpec,
    src: &dyn ObjectSource,
    opts: &LoadOptions,
    anchors_der: Vec<Vec<u8>>,
    now: time::OffsetDateTime,
) -> Result<(Pkcs11Signer, ValidatedChain, Vec<String>), LoadError> {
    opts.pkcs11
        .modules
        .check(&spec.module, opts.pkcs11.namespaced)
        .map_err(LoadError::Invalid)?;
    let selector = match (&spec.key_label, &spec.key_id) {
        (Some(l), None) => KeySelector::Label(l.clone()),
        (None, Some(id)) => KeySelector::Id(
            hex::decode(id)
                .map_err(|_| LoadError::Invalid("pkcs11.keyId must be hex, e.g. 01a2".into()))?,
        ),
        _ => {
            return Err(LoadError::Invalid(
                "pkcs11: exactly one of keyLabel or keyId must be set".into(),
            ))
        }
    };
    let ns = src.namespace().to_string();
    let cert_ref = &spec.certificate_secret_ref;
    let pin_ref = &spec.pin_secret_ref;
    let read = |name: String| async move {
        src.secret(&name).await?.ok_or_else(|| {
            LoadError::Missing(format!(
                "pkcs11: Secret {ns}/{name} not found",
                ns = src.namespace()
            ))
        })
    };
    let crt_data = read(cert_ref.name.clone()).await?;
    let crt = text_key(&crt_data, &cert_ref.key, "Secret", &ns, &cert_ref.name)?;
    let pin_data = read(pin_ref.name.clone()).await?;
    let pin = Redacted(
        pin_data
            .get(&pin_ref.key)
            .ok_or_else(|| {
                LoadError::Missing(format!(
                    "Secret {ns}/{} has no key {:?}",
                    pin_ref.name, pin_ref.key
                ))
            })
            .and_then(|b| {
                String::from_utf8(b.clone()).map_err(|_| {
                    LoadError::Invalid(format!(
                        "Secret {ns}/{} key {:?} (the PIN) is not UTF-8 text",
                        pin_ref.name, pin_ref.key
                    ))
                })
            })?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
    );
    drop(pin_data);
    let module = PathBuf::from(&spec.module);
    let label = spec.token_label.clone();
    let which = format!("token {label:?} (module {})", spec.module);
    let cert_which = format!("{ns}/{}", cert_ref.name);
    let parse_which = which.clone();
    let (chain, public_key, scheme) = super::load::off_workers(move || {
        let chain = SignerChain::from_pem(&crt).map_err(|e| {
            LoadError::Invalid(format!(
                "pkcs11 signer certificate Secret {cert_which}: {e}"
            ))
        })?;
        let (_, cert) = x509_parser::parse_x509_certificate(&chain.signer_der).map_err(|_| {
            LoadError::Invalid(format!(
                "pkcs11 signer certificate Secret {cert_which}: not a certificate"
            ))
        })?;
        let spki = cert.public_key();
        let info = pki::key_info_from_spki(spki.raw)?;
        let public_key = spki.subject_public_key.data.to_vec();
        let signed_with = cert.signature_algorithm.algorithm.to_id_string();
        let scheme = Scheme::for_key(info, &signed_with).map_err(|e| e.into_load(&parse_which))?;
        Ok((chain, public_key, scheme))
    })
    .await?;
    let endpoint = endpoint(&spec.module, &label);
    let token_which = which.clone();
    let token_part = TOKEN_CHECKS.run(move || {
        let which = token_which;
        let token = token::module(&module)
            .map(|m| token::token(m, &label))
            .map_err(|e| e.into_load(&which))?;
        token.login(&pin).map_err(|e| e.into_load(&which))?;
        let (key, _facts) = TokenKey::find(token, &selector, scheme, public_key.clone())
            .map_err(|e| e.into_load(&which))?;
        // The key in the token is the certificate's: a random challenge signed there verifies
        // with the certificate's public key.
        let challenge: [u8; 32] = rand::random();
        let sig = key
            .sign_in_token(&challenge)
            .map_err(|e| e.into_load(&which))?;
        aws_lc_rs::signature::UnparsedPublicKey::new(scheme.verifier(), &public_key)
            .verify(&challenge, &sig)
            .map_err(|_| LoadError::Pki(PkiError::SignerKeyMismatch))?;
        Ok::<_, LoadError>(key)
    });
    let key = tokio::time::timeout(TOKEN_CHECK_TIMEOUT, token_part)
        .await
        .map_err(|_| {
            LoadError::Unavailable(format!(
                "pkcs11 {which}: the token did not answer within {}s",
                TOKEN_CHECK_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| LoadError::Invalid(e.to_string()))??;
    let issuer_chain = chain.clone();
    let validated = super::load::off_workers(move || {
        Ok(ValidatedChain::new(issuer_chain, None, anchors_der, now)?)
    })
    .await?;
    let issuer = IssuerName::new(&chain, &key)?;
    let note = format!(
        "key in PKCS#11 {which}, non-extractable and sensitive, proven by a challenge; signs with {}",
        scheme.mechanism_name()
    );
    let signer = Pkcs11Signer {
        chain,
        token: Arc::new(TokenSigner { key, issuer }),
        endpoint,
    };
    Ok((signer, validated, vec![note]))
}

/// The remote-slot endpoint of a token: one per module and token label (a digest, so any
/// label makes a valid host name).
fn endpoint(module: &str, label: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{module}\0{label}").as_bytes());
    format!("pkcs11://{}", hex::encode(&digest[..8]))
}

/// What a load needs to know about PKCS#11: the operator's settings and the issuer's kind.
#[derive(Clone, Debug, Default)]
pub struct Pkcs11Access {
    /// The operator's settings.
    pub modules: Arc<Pkcs11Modules>,
    /// Whether the issuer is a namespaced PKIIssuer.
    pub namespaced: bool,
}

#[cfg(test)]
mod tests;
