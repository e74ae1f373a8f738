//! What to put into an issued leaf certificate.

use super::ca_constraints::CaConstraints;
use super::csr::{ParsedCsr, SubjectAltNames};
use super::duration::Validity;
use super::error::PkiError;
use super::policy::RequestedCert;
use super::usage::{effective_usages, Usage};

/// Extra URLs written into every issued certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeafExtensions {
    /// cRLDistributionPoints URIs.
    pub crl_distribution_points: Vec<String>,
    /// authorityInfoAccess OCSP URIs.
    pub ocsp_servers: Vec<String>,
    /// authorityInfoAccess caIssuers URIs.
    pub issuing_certificate_urls: Vec<String>,
}

/// The certificate to issue. The public key always comes from the CSR.
#[derive(Clone, Debug, PartialEq)]
pub struct LeafTemplate {
    /// SANs to include.
    pub sans: SubjectAltNames,
    /// Subject CN (the subject is empty otherwise).
    pub common_name: Option<String>,
    /// Issue a CA certificate (pathLen 0) instead of an end-entity one.
    pub is_ca: bool,
    /// Usages; empty means cert-manager's defaults. `cert sign` is added for CAs.
    pub usages: Vec<Usage>,
    /// Validity window.
    pub validity: Validity,
    /// CRL DP / AIA URLs.
    pub extensions: LeafExtensions,
    /// Name constraints written into an issued CA (see [`super::ca_constraints`]).
    pub name_constraints: Option<CaConstraints>,
}

impl LeafTemplate {
    /// Builds a template from the checked request. SANs, CN and key must be
    /// the CSR's (the CSR is the source of truth for names).
    pub fn new(
        csr: &ParsedCsr,
        req: &RequestedCert,
        validity: Validity,
        extensions: LeafExtensions,
    ) -> Result<LeafTemplate, PkiError> {
        if req.sans != csr.sans || req.common_name != csr.common_name || req.key != csr.key {
            return Err(PkiError::InvalidCsr(
                "the requested names or key differ from the CSR".into(),
            ));
        }
        Ok(LeafTemplate {
            sans: csr.sans.clone(),
            common_name: csr.common_name.clone(),
            is_ca: req.is_ca,
            usages: req.usages.clone(),
            validity,
            extensions,
            name_constraints: None,
        })
    }

    /// The usages actually written: defaults when empty, plus `cert sign`
    /// for CA certificates.
    pub fn effective_usages(&self) -> Vec<Usage> {
        issued_usages(&self.usages, self.is_ca)
    }
}

/// Usages an issued certificate carries for a request: cert-manager's
/// defaults when `usages` is empty, plus `cert sign` when `is_ca`.
pub fn issued_usages(usages: &[Usage], is_ca: bool) -> Vec<Usage> {
    let mut u = effective_usages(usages);
    if is_ca && !u.contains(&Usage::CertSign) {
        u.push(Usage::CertSign);
    }
    u
}
