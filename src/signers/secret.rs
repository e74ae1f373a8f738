//! The `secret` backend: an intermediate CA whose key and certificate live in a Secret.

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{SignRequest, Signer, SignerError};
use crate::pki::{self, IssuerName, PkiError, SignerChain, SignerKey};

/// Signs locally with a key loaded from a Secret.
pub struct SecretSigner {
    chain: SignerChain,
    key: SignerKey,
    /// The signer's subject and SKI, read once.
    issuer: IssuerName,
}

impl SecretSigner {
    /// Build from the Secret's `tls.crt` (signer first) and `tls.key` PEM.
    pub fn from_pem(tls_crt: &str, tls_key: &str) -> Result<SecretSigner, PkiError> {
        let chain = SignerChain::from_pem(tls_crt)?;
        let key = SignerKey::from_pem(tls_key)?;
        let issuer = IssuerName::new(&chain, &key)?;
        Ok(SecretSigner { chain, key, issuer })
    }

    /// The private key (for the key/certificate match check).
    pub fn key(&self) -> &SignerKey {
        &self.key
    }
}

impl Signer for SecretSigner {
    fn backend(&self) -> &'static str {
        "secret"
    }

    fn chain(&self) -> &SignerChain {
        &self.chain
    }

    fn sign<'a>(&'a self, req: SignRequest<'a>) -> BoxFuture<'a, Result<Vec<u8>, SignerError>> {
        async move {
            Ok(pki::sign_leaf_as(
                req.template,
                req.csr,
                &self.issuer,
                &self.key,
            )?)
        }
        .boxed()
    }
}
