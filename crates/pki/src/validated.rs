//! The signer chain validated once per issuer check, and the per-leaf checks against it.
//!
//! Everything about the chain above a leaf — the signer's and every CA's signatures up to a
//! trust anchor, CA flags, keyCertSign, pathLen (for leaves and for issued sub-CAs), name
//! constraints, EKU restrictions, validity windows — is established once when the issuer is
//! checked (generation, referenced Secret/ConfigMap change, health interval) and kept as a
//! [`ValidatedChain`]. Per leaf only the leaf's own facts are checked: its issuer Name is the
//! signer's subject, its signature verifies under the signer's key (one signature
//! verification), `now` is inside every CA's validity, its names are inside every CA's
//! name constraints, its EKUs inside every CA's EKUs, and (for a CA leaf) the chain leaves
//! room for it. rustls-webpki then checks the leaf independently with the signer as its
//! anchor and, in turn, each CA's DNS/IP name constraints.

use std::collections::BTreeSet;

use rustls_pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use time::OffsetDateTime;
use webpki::{EndEntityCert, KeyPurposeId, KeyUsage};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use super::der;
use super::error::PkiError;
use super::keys::{verify_signature, SignerKey};
use super::name_constraints::{chain_constraints, NameConstraints};
use super::path::{room_for_sub_ca, MAX_ANCHORS, MAX_CHAIN_CERTS};
use super::signer_chain::{parse_cert, signer_path, SignerChain, SignerInfo};
use super::usage::{eku_oids, Usage};
use super::verify::certs_to_pem;

/// anyExtendedKeyUsage.
const ANY_EKU: &str = "2.5.29.37.0";

/// One CA's validity window on the leaves' path.
#[derive(Clone, Debug)]
struct CaWindow {
    what: &'static str,
    subject: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
}

/// EKUs the CAs of the chain allow their leaves (the intersection of every CA's
/// extendedKeyUsage that does not contain anyExtendedKeyUsage).
#[derive(Clone, Debug, PartialEq)]
struct EkuRestriction {
    permitted: BTreeSet<String>,
    /// The restricting CAs' subjects, for messages.
    by: Vec<String>,
}

/// A signer chain that passed the issuer check, with the facts every leaf is checked against.
#[derive(Debug)]
pub struct ValidatedChain {
    chain: SignerChain,
    anchors_der: Vec<Vec<u8>>,
    info: SignerInfo,
    signer_name: Vec<u8>,
    signer_spki: Vec<u8>,
    signer_key: Vec<u8>,
    windows: Vec<CaWindow>,
    constraints: Vec<NameConstraints>,
    webpki_anchor: TrustAnchor<'static>,
    webpki_constraints: Vec<Option<Vec<u8>>>,
    sub_ca: Result<(), PkiError>,
    ekus: Option<EkuRestriction>,
    earliest_not_after: OffsetDateTime,
    chain_pem: String,
}

impl ValidatedChain {
    /// The issuer check: `key` (if given) is the signer's key, the signer is a currently
    /// valid CA with keyCertSign, and the chain verifies to one of `anchors_der` (signatures,
    /// validity, CA flags, pathLen). Also records whether a sub-CA could be issued, the name
    /// constraints, DNS/IP constraints for webpki, and the EKU restrictions of every CA.
    pub fn new(
        chain: SignerChain,
        key: Option<&SignerKey>,
        anchors_der: Vec<Vec<u8>>,
        now: OffsetDateTime,
    ) -> Result<ValidatedChain, PkiError> {
        let (info, path) = signer_path(&chain, key, &anchors_der, now)?;
        let sub_ca = room_for_sub_ca(&chain.signer_der, &path);
        let signer = parse_cert(&chain.signer_der)?;
        let mut cas = vec![chain.signer_der.clone()];
        cas.extend(path.issuers);
        let mut windows = Vec::new();
        let mut restriction: Option<EkuRestriction> = None;
        let mut webpki_constraints = Vec::new();
        for (i, der) in cas.iter().enumerate() {
            let cert = parse_cert(der)?;
            let what = match i {
                0 => "signer certificate",
                _ if i + 1 == cas.len() => "trust anchor",
                _ => "intermediate CA",
            };
            windows.push(CaWindow {
                what,
                subject: cert.subject().to_string(),
                not_before: cert.validity().not_before.to_datetime(),
                not_after: cert.validity().not_after.to_datetime(),
            });
            if let Some(oids) = cert_eku_oids(&cert)? {
                if !oids.contains(ANY_EKU) {
                    let r = restriction.get_or_insert_with(|| EkuRestriction {
                        permitted: oids.clone(),
                        by: Vec::new(),
                    });
                    r.permitted = r.permitted.intersection(&oids).cloned().collect();
                    r.by.push(cert.subject().to_string());
                }
            }
            if let Some(nc) = dns_ip_constraints(der)? {
                webpki_constraints.push(Some(nc));
            }
        }
        if webpki_constraints.is_empty() {
            webpki_constraints.push(None);
        }
        let constraints = chain_constraints(&cas)?;
        let webpki_anchor =
            webpki::anchor_from_trusted_cert(&CertificateDer::from(chain.signer_der.as_slice()))
                .map_err(|e| {
                    PkiError::ChainInvalid(format!("webpki cannot parse the signer: {e}"))
                })?
                .to_owned();
        let earliest_not_after = chain.earliest_not_after();
        // Only the validated path is written after a leaf (never the anchor, never extra
        // certificates a Secret or a remote CA's answer carried beside the path).
        let on_path: Vec<Vec<u8>> = cas
            .iter()
            .filter(|c| !anchors_der.contains(c))
            .cloned()
            .collect();
        let chain_pem = certs_to_pem(&on_path);
        Ok(ValidatedChain {
            signer_name: signer.subject().as_raw().to_vec(),
            signer_spki: signer.public_key().raw.to_vec(),
            signer_key: signer.public_key().subject_public_key.data.to_vec(),
            chain,
            anchors_der,
            info,
            windows,
            constraints,
            webpki_anchor,
            webpki_constraints,
            sub_ca,
            ekus: restriction,
            earliest_not_after,
            chain_pem,
        })
    }

    /// Validates the chain above `leaf_der`: its issuer is found among `chain_der` and
    /// `anchors_der` (the signer), the rest of `chain_der` are the intermediates above it.
    pub fn for_leaf(
        leaf_der: &[u8],
        chain_der: &[Vec<u8>],
        anchors_der: &[Vec<u8>],
        now: OffsetDateTime,
    ) -> Result<ValidatedChain, PkiError> {
        super::path::check_count("the certificate chain", chain_der.len(), MAX_CHAIN_CERTS)?;
        super::path::check_count("the trust-anchor bundle", anchors_der.len(), MAX_ANCHORS)?;
        let leaf = parse_cert(leaf_der)?;
        let signer = anchors_der
            .iter()
            .chain(chain_der)
            .find(|c| parse_cert(c).is_ok_and(|c| super::signer_chain::issued_by(&leaf, &c)))
            .ok_or_else(|| no_issuer(&leaf))?;
        let chain = SignerChain {
            signer_der: signer.clone(),
            intermediates_der: chain_der.iter().filter(|c| *c != signer).cloned().collect(),
        };
        ValidatedChain::new(chain, None, anchors_der.to_vec(), now).map_err(|e| match e {
            PkiError::SignerNotValid(m) | PkiError::SignerNotCa(m) => PkiError::ChainInvalid(m),
            e => e,
        })
    }

    /// The signer certificate and the intermediates above it.
    pub fn chain(&self) -> &SignerChain {
        &self.chain
    }

    /// The signer certificate and the intermediates on its validated path to the anchor
    /// (without the anchor), PEM: what follows the leaf in `status.certificate`.
    pub fn chain_pem(&self) -> &str {
        &self.chain_pem
    }

    /// The trust anchors (DER).
    pub fn anchors_der(&self) -> &[Vec<u8>] {
        &self.anchors_der
    }

    /// Status facts of the signer certificate.
    pub fn info(&self) -> &SignerInfo {
        &self.info
    }

    /// The earliest notAfter of the signer and its intermediates.
    pub fn earliest_not_after(&self) -> OffsetDateTime {
        self.earliest_not_after
    }

    /// The name constraints of every CA on the leaves' path (signer to anchor).
    pub fn name_constraints(&self) -> &[NameConstraints] {
        &self.constraints
    }

    /// Whether this signer may issue a CA certificate (pathLen room up to the anchor).
    pub fn check_room_for_sub_ca(&self) -> Result<(), PkiError> {
        self.sub_ca.clone()
    }

    /// The extended key usages of `usages` (none means "any purpose") are within every
    /// CA's extendedKeyUsage.
    pub fn check_usages(&self, usages: &[Usage]) -> Result<(), PkiError> {
        self.check_eku_oids(&eku_oids(usages))
    }

    fn check_eku_oids(&self, oids: &[String]) -> Result<(), PkiError> {
        let Some(r) = &self.ekus else { return Ok(()) };
        let name = |o: &str| {
            Usage::from_eku_oid(o).map_or_else(|| o.to_string(), |u| u.as_str().to_string())
        };
        let permitted: Vec<String> = r.permitted.iter().map(|o| name(o)).collect();
        let refuse = |what: String| {
            PkiError::ExtendedKeyUsageNotPermitted(format!(
                "{what} is not permitted by the signer chain: the extendedKeyUsage of {} permits only {permitted:?}",
                r.by.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
            ))
        };
        if oids.is_empty() {
            return Err(refuse(
                "a certificate without extended key usage (any purpose)".into(),
            ));
        }
        match oids.iter().find(|o| !r.permitted.contains(*o)) {
            Some(o) => Err(refuse(format!("extended key usage {:?}", name(o)))),
            None => Ok(()),
        }
    }

    /// Our RFC 5280 walk for one leaf, with the chain part already validated: the leaf's
    /// issuer Name is the signer's subject and its signature verifies under the signer's key;
    /// `now` is inside the validity of every CA on the path; a CA leaf fits the pathLen of
    /// every CA above it; the leaf's EKUs are inside every CA's EKUs. (Name constraints are
    /// checked by the caller, with the leaf's SANs.) Returns the verified signature.
    pub(crate) fn check_leaf<'a>(
        &self,
        leaf: &X509Certificate<'a>,
        leaf_der: &'a [u8],
        leaf_ekus: &[String],
        now: OffsetDateTime,
    ) -> Result<VerifiedSignature<'a>, PkiError> {
        let signed = leaf.issuer().as_raw() == self.signer_name.as_slice()
            && SubjectPublicKeyInfo::from_der(&self.signer_spki).is_ok_and(|(_, spki)| {
                verify_signature(
                    &spki,
                    &leaf.signature_algorithm,
                    &leaf.signature_value.data,
                    leaf.tbs_certificate.as_ref(),
                )
            });
        if !signed {
            return Err(no_issuer(leaf));
        }
        for w in &self.windows {
            if now < w.not_before {
                return Err(PkiError::ChainInvalid(format!(
                    "{} \"{}\" is not valid before {}",
                    w.what, w.subject, w.not_before
                )));
            }
            if now > w.not_after {
                return Err(PkiError::ChainInvalid(format!(
                    "{} \"{}\" expired at {}",
                    w.what, w.subject, w.not_after
                )));
            }
        }
        let is_ca = leaf
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|b| b.value.ca);
        if is_ca {
            self.sub_ca.clone().map_err(|e| match e {
                PkiError::CaNotPossible(m) => PkiError::ChainInvalid(m),
                e => e,
            })?;
        }
        self.check_eku_oids(leaf_ekus)
            .map_err(|e| PkiError::ChainInvalid(e.to_string()))?;
        let (outer, _) = der::read_tlv(leaf_der)?;
        let parts = der::children(outer.content)?;
        let malformed = || PkiError::InvalidCertificate("malformed certificate".into());
        let [tbs, alg, bits] = parts.as_slice() else {
            return Err(malformed());
        };
        let signature = bits.content.get(1..).ok_or_else(malformed)?;
        Ok(VerifiedSignature {
            key: self.signer_key.clone(),
            alg_id: alg.content,
            message: tbs.full,
            signature,
        })
    }

    /// rustls-webpki's check of an end-entity leaf: the signer as its anchor, with, in turn,
    /// the DNS and IP name constraints of every CA on the path as the anchor's constraints;
    /// every TLS EKU in `usages` required (any EKU when there is none). `verified` is the
    /// signature our own walk verified: webpki's signature algorithms skip recomputing exactly
    /// that (key, algorithm, message, signature) and verify anything else themselves.
    pub(crate) fn webpki_check(
        &self,
        leaf_der: &[u8],
        usages: &[Usage],
        now: OffsetDateTime,
        verified: Option<&VerifiedSignature<'_>>,
    ) -> Result<(), PkiError> {
        let leaf = CertificateDer::from(leaf_der);
        let ee = EndEntityCert::try_from(&leaf)
            .map_err(|e| PkiError::ChainInvalid(format!("webpki cannot parse the leaf: {e}")))?;
        let secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        let reuse: Vec<Reuse<'_>> = webpki::ALL_VERIFICATION_ALGS
            .iter()
            .map(|inner| Reuse {
                inner: *inner,
                known: verified,
            })
            .collect();
        let algs: Vec<&dyn SignatureVerificationAlgorithm> = reuse
            .iter()
            .map(|r| r as &dyn SignatureVerificationAlgorithm)
            .collect();
        let canon: Vec<Usage> = usages.iter().map(|u| u.canonical()).collect();
        let mut required = Vec::new();
        let mut names = Vec::new();
        for (u, oid, usage, name) in [
            (
                Usage::ServerAuth,
                SERVER_AUTH,
                KeyUsage::server_auth(),
                "server auth",
            ),
            (
                Usage::ClientAuth,
                CLIENT_AUTH,
                KeyUsage::client_auth(),
                "client auth",
            ),
        ] {
            if canon.contains(&u) {
                required.push((KeyPurposeId::new(oid), usage));
                names.push(name);
            }
        }
        let what = if names.is_empty() {
            "the chain".to_string()
        } else {
            names.join(" and ")
        };
        for nc in &self.webpki_constraints {
            let mut a = self.webpki_anchor.clone();
            a.name_constraints = nc.as_deref().map(|n| n.to_vec().into());
            ee.verify_for_usage(&algs, &[a], &[], time, AllEkus(&required), None, None)
                .map_err(|e| {
                    PkiError::ChainInvalid(format!("path validation for {what} failed: {e}"))
                })?;
        }
        Ok(())
    }
}

fn no_issuer(leaf: &X509Certificate<'_>) -> PkiError {
    PkiError::ChainInvalid(format!(
        "no issuer found for \"{}\" (issuer \"{}\") among the chain and trust anchors; the chain does not lead to a trusted root",
        leaf.subject(),
        leaf.issuer()
    ))
}

mod webpki_parts;

pub(crate) use self::webpki_parts::{cert_eku_oids, dns_ip_constraints, VerifiedSignature};
use self::webpki_parts::{AllEkus, Reuse, CLIENT_AUTH, SERVER_AUTH};

#[cfg(test)]
mod tests;
