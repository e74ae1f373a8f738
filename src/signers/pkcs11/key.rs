//! A CA key held in a PKCS#11 token, as rcgen's [`SigningKey`]: the public half is the signer
//! certificate's, every signature is made inside the token (`C_Sign`), never with key bytes.

use std::sync::{Arc, Mutex};

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use rcgen::{PublicKeyData, SignatureAlgorithm, SigningKey};
use sha2::Digest;

use super::encoding;
use super::token::{Lease, Token};
use super::Pkcs11Error;
use crate::pki::{KeyAlgorithm, KeyInfo};

/// The signature scheme, from the signer certificate's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// CKM_ECDSA over a SHA-256 digest computed here, P-256.
    EcdsaP256,
    /// CKM_ECDSA over a SHA-384 digest computed here, P-384.
    EcdsaP384,
    /// CKM_SHA256_RSA_PKCS (PKCS#1 v1.5), RSA 2048-8192.
    RsaPkcs1Sha256,
    /// CKM_SHA256_RSA_PKCS_PSS (RSASSA-PSS, SHA-256, MGF1-SHA-256, 32-byte salt), RSA 2048-8192.
    RsaPssSha256,
    /// CKM_EDDSA (pure Ed25519).
    Ed25519,
}

impl Scheme {
    /// The scheme for a signer certificate's key; an RSA key signs with RSASSA-PSS when the
    /// signer certificate itself was signed so (`signed_with`: its signatureAlgorithm OID),
    /// else with PKCS#1 v1.5.
    pub fn for_key(info: KeyInfo, signed_with: &str) -> Result<Scheme, Pkcs11Error> {
        match (info.algorithm, info.size_bits) {
            (KeyAlgorithm::Ecdsa, 256) => Ok(Scheme::EcdsaP256),
            (KeyAlgorithm::Ecdsa, 384) => Ok(Scheme::EcdsaP384),
            (KeyAlgorithm::Rsa, 2048..=8192) if signed_with == encoding::OID_RSASSA_PSS => {
                Ok(Scheme::RsaPssSha256)
            }
            (KeyAlgorithm::Rsa, 2048..=8192) => Ok(Scheme::RsaPkcs1Sha256),
            (KeyAlgorithm::Ed25519, _) => Ok(Scheme::Ed25519),
            (alg, bits) => Err(Pkcs11Error::Key(format!(
                "{alg} {bits}-bit signer keys are not supported in a token (use ECDSA P-256/P-384, RSA 2048-8192 or Ed25519)"
            ))),
        }
    }

    /// The PKCS#11 mechanism, as reported in the issuer's status.
    pub fn mechanism_name(self) -> &'static str {
        match self {
            Scheme::EcdsaP256 => "CKM_ECDSA over SHA-256 (ecdsa-with-SHA256)",
            Scheme::EcdsaP384 => "CKM_ECDSA over SHA-384 (ecdsa-with-SHA384)",
            Scheme::RsaPkcs1Sha256 => "CKM_SHA256_RSA_PKCS (sha256WithRSAEncryption)",
            Scheme::RsaPssSha256 => {
                "CKM_SHA256_RSA_PKCS_PSS (RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32)"
            }
            Scheme::Ed25519 => "CKM_EDDSA (Ed25519)",
        }
    }

    fn key_type(self) -> KeyType {
        match self {
            Scheme::EcdsaP256 | Scheme::EcdsaP384 => KeyType::EC,
            Scheme::RsaPkcs1Sha256 | Scheme::RsaPssSha256 => KeyType::RSA,
            Scheme::Ed25519 => KeyType::EC_EDWARDS,
        }
    }

    fn rcgen(self) -> &'static SignatureAlgorithm {
        match self {
            Scheme::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Scheme::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            // PSS: rcgen encodes with this, the AlgorithmIdentifier is replaced
            // ([`crate::pki::CaKey::algorithm_identifier`]).
            Scheme::RsaPkcs1Sha256 | Scheme::RsaPssSha256 => &rcgen::PKCS_RSA_SHA256,
            Scheme::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }

    /// The aws-lc-rs algorithm that verifies this scheme's signatures (X.509 encoding).
    pub fn verifier(self) -> &'static dyn aws_lc_rs::signature::VerificationAlgorithm {
        use aws_lc_rs::signature as s;
        match self {
            Scheme::EcdsaP256 => &s::ECDSA_P256_SHA256_ASN1,
            Scheme::EcdsaP384 => &s::ECDSA_P384_SHA384_ASN1,
            Scheme::RsaPkcs1Sha256 => &s::RSA_PKCS1_2048_8192_SHA256,
            Scheme::RsaPssSha256 => &s::RSA_PSS_2048_8192_SHA256,
            Scheme::Ed25519 => &s::ED25519,
        }
    }
}

/// A private key in a token.
pub struct TokenKey {
    token: Arc<Token>,
    handle: ObjectHandle,
    /// The module epoch the handle belongs to.
    epoch: u64,
    scheme: Scheme,
    /// The signer certificate's subjectPublicKey bits.
    public_key: Vec<u8>,
}

/// What the issuer check found out about the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFacts {
    /// `CKA_EXTRACTABLE`.
    pub extractable: bool,
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
}

/// How the key is named in the spec.
pub enum KeySelector {
    /// `CKA_LABEL`.
    Label(String),
    /// `CKA_ID`.
    Id(Vec<u8>),
}

impl TokenKey {
    /// Find the one private key `selector` names in the logged-in `token`, check it can sign,
    /// never leaves the token, and is of the certificate's type.
    pub fn find(
        token: Arc<Token>,
        selector: &KeySelector,
        scheme: Scheme,
        public_key: Vec<u8>,
    ) -> Result<(TokenKey, KeyFacts), Pkcs11Error> {
        let (handle, epoch, facts) = {
            let lease = token.lease()?;
            let found = find_in(&lease, &token.label, selector, scheme);
            match found {
                Ok((h, f)) => (h, lease.epoch(), f),
                Err(e @ Pkcs11Error::Token(_)) => {
                    lease.discard();
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        };
        Ok((
            TokenKey {
                token,
                handle,
                epoch,
                scheme,
                public_key,
            },
            facts,
        ))
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The token.
    pub fn token(&self) -> &Arc<Token> {
        &self.token
    }

    /// Sign `msg` in the token, in the X.509 encoding of the scheme.
    pub fn sign_in_token(&self, msg: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
        let lease = self.token.lease()?;
        if lease.epoch() != self.epoch {
            return Err(Pkcs11Error::Token(
                "the PKCS#11 module was re-initialised since the issuer check".into(),
            ));
        }
        let s = lease.session();
        let result = match self.scheme {
            Scheme::EcdsaP256 => s
                .sign(&Mechanism::Ecdsa, self.handle, &sha2::Sha256::digest(msg))
                .map(|raw| encoding::ecdsa_der(&raw, 32)),
            Scheme::EcdsaP384 => s
                .sign(&Mechanism::Ecdsa, self.handle, &sha2::Sha384::digest(msg))
                .map(|raw| encoding::ecdsa_der(&raw, 48)),
            Scheme::RsaPkcs1Sha256 => s.sign(&Mechanism::Sha256RsaPkcs, self.handle, msg).map(Ok),
            Scheme::RsaPssSha256 => s
                .sign(
                    &Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                        hash_alg: MechanismType::SHA256,
                        mgf: PkcsMgfType::MGF1_SHA256,
                        s_len: 32.into(),
                    }),
                    self.handle,
                    msg,
                )
                .map(Ok),
            Scheme::Ed25519 => s
                .sign(
                    &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                    self.handle,
                    msg,
                )
                .map(Ok),
        };
        match result {
            Ok(sig) => sig,
            Err(e) => {
                let err = classify(e);
                if matches!(err, Pkcs11Error::Token(_)) {
                    lease.discard();
                }
                Err(err)
            }
        }
    }
}

impl PublicKeyData for TokenKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public_key
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.scheme.rcgen()
    }
}

/// One signing call with a [`TokenKey`], as rcgen's [`SigningKey`]: it keeps why the token
/// failed (rcgen's error type cannot carry it).
pub struct Signing<'a> {
    key: &'a TokenKey,
    error: Mutex<Option<Pkcs11Error>>,
}

impl<'a> Signing<'a> {
    /// A call with `key`.
    pub fn new(key: &'a TokenKey) -> Signing<'a> {
        Signing {
            key,
            error: Mutex::new(None),
        }
    }

    /// Why the token failed, if it did.
    pub fn into_error(self) -> Option<Pkcs11Error> {
        self.error.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl PublicKeyData for Signing<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.key.der_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.key.algorithm()
    }
}

impl crate::pki::CaKey for Signing<'_> {
    fn algorithm_identifier(&self) -> Option<Vec<u8>> {
        (self.key.scheme == Scheme::RsaPssSha256)
            .then(|| hex::decode(encoding::RSASSA_PSS_SHA256_ALG_ID).expect("constant hex"))
    }
}

impl SigningKey for Signing<'_> {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.key.sign_in_token(msg).map_err(|e| {
            *self.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            rcgen::Error::RemoteKeyError
        })
    }
}

fn find_in(
    lease: &Lease<'_>,
    token_label: &str,
    selector: &KeySelector,
    scheme: Scheme,
) -> Result<(ObjectHandle, KeyFacts), Pkcs11Error> {
    let s: &Session = lease.session();
    let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
    let shown = match selector {
        KeySelector::Label(l) => {
            template.push(Attribute::Label(l.as_bytes().to_vec()));
            format!("label {l:?}")
        }
        KeySelector::Id(id) => {
            template.push(Attribute::Id(id.clone()));
            format!("id {}", hex::encode(id))
        }
    };
    let found = s.find_objects(&template).map_err(classify)?;
    let handle = match found.as_slice() {
        [] => {
            return Err(Pkcs11Error::KeyNotFound(format!(
                "no private key with {shown} in token {token_label:?}"
            )))
        }
        [h] => *h,
        more => {
            return Err(Pkcs11Error::Key(format!(
                "{} private keys have {shown}: name exactly one",
                more.len()
            )))
        }
    };
    let attrs = s
        .get_attributes(
            handle,
            &[
                AttributeType::KeyType,
                AttributeType::Sign,
                AttributeType::Extractable,
                AttributeType::Sensitive,
                AttributeType::AlwaysAuthenticate,
            ],
        )
        .map_err(classify)?;
    let (mut key_type, mut sign, mut extractable, mut sensitive, mut always_auth) =
        (None, false, true, false, false);
    for a in attrs {
        match a {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Sign(b) => sign = b,
            Attribute::Extractable(b) => extractable = b,
            Attribute::Sensitive(b) => sensitive = b,
            Attribute::AlwaysAuthenticate(b) => always_auth = b,
            _ => {}
        }
    }
    if key_type != Some(scheme.key_type()) {
        return Err(Pkcs11Error::Key(format!(
            "the private key with {shown} is of type {key_type:?}, but the signer certificate's key needs {:?}",
            scheme.key_type()
        )));
    }
    if !sign {
        return Err(Pkcs11Error::Key(format!(
            "the private key with {shown} may not sign (CKA_SIGN is false)"
        )));
    }
    if extractable || !sensitive {
        return Err(Pkcs11Error::Key(format!(
            "the private key with {shown} can leave the token (CKA_EXTRACTABLE={extractable}, CKA_SENSITIVE={sensitive}); a CA key must be non-extractable and sensitive"
        )));
    }
    if always_auth {
        return Err(Pkcs11Error::Key(format!(
            "the private key with {shown} needs the PIN for every signature (CKA_ALWAYS_AUTHENTICATE); not supported"
        )));
    }
    Ok((
        handle,
        KeyFacts {
            extractable,
            sensitive,
        },
    ))
}

/// A failed PKCS#11 call: the token (or its login) went away, or the signature itself failed.
pub fn classify(e: CkError) -> Pkcs11Error {
    match e {
        CkError::Pkcs11(rv, f) => {
            let text = format!("{f} failed: {rv:?}");
            match rv {
                RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::GeneralError
                | RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::CryptokiNotInitialized
                | RvError::SlotIdInvalid => Pkcs11Error::Token(text),
                _ => Pkcs11Error::Signing(text),
            }
        }
        other => Pkcs11Error::Signing(other.to_string()),
    }
}
