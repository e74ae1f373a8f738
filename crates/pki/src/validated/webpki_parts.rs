//! The pieces the second verifier (rustls-webpki) needs: the EKU and DNS/IP constraint facts
//! it is given, an EKU validator requiring every purpose, and the reuse of the one signature
//! our own walk just verified.

use std::collections::BTreeSet;

use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};
use webpki::{KeyPurposeId, KeyUsage};
use x509_parser::prelude::X509Certificate;

use super::super::der;
use super::super::error::PkiError;
use super::super::extensions::NAME_CONSTRAINTS;
use super::super::signer_chain::parse_cert;
use super::super::usage::{eku_oids, Usage};

/// The EKU OIDs of a certificate's extendedKeyUsage, `None` without the extension.
pub(crate) fn cert_eku_oids(
    cert: &X509Certificate<'_>,
) -> Result<Option<BTreeSet<String>>, PkiError> {
    let eku = cert
        .extended_key_usage()
        .map_err(|e| PkiError::InvalidCertificate(format!("malformed extendedKeyUsage: {e}")))?;
    let Some(eku) = eku else { return Ok(None) };
    let e = eku.value;
    let mut usages = Vec::new();
    for (on, u) in [
        (e.any, Usage::Any),
        (e.server_auth, Usage::ServerAuth),
        (e.client_auth, Usage::ClientAuth),
        (e.code_signing, Usage::CodeSigning),
        (e.email_protection, Usage::EmailProtection),
        (e.time_stamping, Usage::Timestamping),
        (e.ocsp_signing, Usage::OcspSigning),
    ] {
        if on {
            usages.push(u);
        }
    }
    let mut oids: BTreeSet<String> = eku_oids(&usages).into_iter().collect();
    oids.extend(e.other.iter().map(|o| o.to_id_string()));
    Ok(Some(oids))
}

/// The DNS and iPAddress subtrees of a CA's nameConstraints, re-encoded as the contents of
/// a NameConstraints SEQUENCE (what a webpki trust anchor carries); `None` when the CA has
/// none of those.
pub(crate) fn dns_ip_constraints(ca_der: &[u8]) -> Result<Option<Vec<u8>>, PkiError> {
    let ca = parse_cert(ca_der)?;
    let Some(ext) = ca
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == NAME_CONSTRAINTS)
    else {
        return Ok(None);
    };
    let (outer, _) = der::read_tlv(ext.value)?;
    let mut out = Vec::new();
    for list in der::children(outer.content)? {
        let kept: Vec<u8> = der::children(list.content)?
            .into_iter()
            .filter(|subtree| {
                der::children(subtree.content)
                    .ok()
                    .and_then(|c| c.first().map(|b| b.tag))
                    .is_some_and(|tag| tag == 0x82 || tag == 0x87)
            })
            .flat_map(|subtree| subtree.full.to_vec())
            .collect();
        if !kept.is_empty() {
            out.extend(der::tlv(list.tag, &kept));
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// id-kp-serverAuth (DER content of the OID).
pub(super) const SERVER_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// id-kp-clientAuth.
pub(super) const CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// webpki EKU check requiring every listed purpose (any EKU when the list is empty).
pub(super) struct AllEkus<'a>(pub(super) &'a [(KeyPurposeId<'static>, KeyUsage)]);

impl webpki::ExtendedKeyUsageValidator for AllEkus<'_> {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let present = iter.collect::<Result<Vec<_>, _>>()?;
        match self.0.iter().find(|(want, _)| !present.contains(want)) {
            None => Ok(()),
            Some((_, usage)) => Err(webpki::Error::RequiredEkuNotFoundContext(
                webpki::RequiredEkuNotFoundContext {
                    required: *usage,
                    present: present.iter().map(|p| p.to_decoded_oid()).collect(),
                },
            )),
        }
    }
}

/// A signature verified by our own walk (aws-lc-rs): the signer's key, the leaf's
/// signatureAlgorithm (AlgorithmIdentifier contents), the TBSCertificate and the signature.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedSignature<'a> {
    pub(crate) key: Vec<u8>,
    pub(crate) alg_id: &'a [u8],
    pub(crate) message: &'a [u8],
    pub(crate) signature: &'a [u8],
}

/// One of webpki's signature algorithms that answers from `known` when asked to verify
/// exactly that signature with the same algorithm, and verifies everything else itself.
#[derive(Debug)]
pub(super) struct Reuse<'a> {
    pub(super) inner: &'static dyn SignatureVerificationAlgorithm,
    pub(super) known: Option<&'a VerifiedSignature<'a>>,
}

impl SignatureVerificationAlgorithm for Reuse<'_> {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let same = self.known.is_some_and(|k| {
            k.alg_id == self.inner.signature_alg_id().as_ref()
                && k.key == public_key
                && k.message == message
                && k.signature == signature
        });
        if same {
            return Ok(());
        }
        self.inner.verify_signature(public_key, message, signature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.signature_alg_id()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}
