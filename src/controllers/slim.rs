//! What the request controllers keep of each object in their reflector stores: only what a
//! reconcile reads. Every watch event carries the full object; it is slimmed before it enters
//! the store, and a reconcile always works on the slim copy of the latest version.
//!
//! * always dropped: managedFields, labels, owner references, finalizers, other annotations;
//! * requests of other issuers: only the issuer reference (or signerName) is kept, which is
//!   all that decides they are not ours;
//! * finished requests (Ready, Failed, Denied, InvalidRequest; a CSR with a certificate or
//!   Denied/Failed): the CSR bytes, the issued certificate and CA, the request parameters and
//!   the conditions' messages and times are dropped. A signed CSR's certificate is replaced by
//!   a one-byte marker: only whether it is set is read;
//! * unfinished requests of ours: everything the pipeline reads (CSR bytes, duration, isCA,
//!   usages, requester, conditions) is kept.

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;

use super::requests::certificate_request::is_finished;
use super::requests::certificate_signing_request::{DURATION_ANNOTATION, IS_CA_ANNOTATION};
use super::requests::RequestKind;
use crate::api::cert_manager::{CertificateRequest, CertificateRequestSpec};
use crate::api::condition::Condition;
use crate::api::issuer::IssuerKey;

/// What a signed CSR's `status.certificate` becomes in the store.
pub const SIGNED_MARKER: &[u8] = b"-";

fn slim_meta(meta: &mut ObjectMeta, keep_annotations: &[&str]) {
    meta.managed_fields = None;
    meta.labels = None;
    meta.owner_references = None;
    meta.finalizers = None;
    meta.annotations = meta
        .annotations
        .take()
        .map(|mut a| {
            a.retain(|k, _| keep_annotations.contains(&k.as_str()));
            a
        })
        .filter(|a| !a.is_empty());
}

/// A condition reduced to what the pipeline reads of a finished request.
fn bare(c: &Condition) -> Condition {
    Condition {
        type_: c.type_.clone(),
        status: c.status.clone(),
        reason: c.reason.clone(),
        message: None,
        last_transition_time: None,
        observed_generation: None,
    }
}

/// Slims a CertificateRequest for the store.
pub fn certificate_request(cr: &mut CertificateRequest) {
    slim_meta(&mut cr.metadata, &[]);
    let ours = cr.issuer_key().is_some();
    let finished = cr
        .status
        .as_ref()
        .is_some_and(|s| is_finished(&s.conditions));
    if ours && !finished {
        if let Some(s) = cr.status.as_mut() {
            s.certificate = None;
            s.ca = None;
        }
        return;
    }
    cr.spec = CertificateRequestSpec {
        issuer_ref: std::mem::take(&mut cr.spec.issuer_ref),
        ..Default::default()
    };
    cr.status = match (ours, cr.status.take()) {
        (true, Some(s)) => Some(crate::api::cert_manager::CertificateRequestStatus {
            conditions: s.conditions.iter().map(bare).collect(),
            ..Default::default()
        }),
        _ => None,
    };
}

/// Slims a Kubernetes CertificateSigningRequest for the store.
pub fn certificate_signing_request(csr: &mut CertificateSigningRequest) {
    slim_meta(&mut csr.metadata, &[DURATION_ANNOTATION, IS_CA_ANNOTATION]);
    let ours = IssuerKey::from_signer_name(&csr.spec.signer_name).is_some();
    let status = csr.status.get_or_insert_with(Default::default);
    let signed = status.certificate.as_ref().is_some_and(|c| !c.0.is_empty());
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let ended = conditions
        .iter()
        .any(|c| (c.type_ == "Denied" || c.type_ == "Failed") && c.status == "True");
    if ours && !signed && !ended {
        return;
    }
    for c in conditions.iter_mut() {
        c.message = None;
        c.last_transition_time = None;
        c.last_update_time = None;
    }
    if signed {
        status.certificate = Some(ByteString(SIGNED_MARKER.to_vec()));
    }
    csr.metadata.annotations = None;
    csr.spec = k8s_openapi::api::certificates::v1::CertificateSigningRequestSpec {
        signer_name: std::mem::take(&mut csr.spec.signer_name),
        ..Default::default()
    };
    if !ours {
        csr.status = None;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::cert_manager::{CertificateRequestStatus, IssuerRef};
    use crate::controllers::requests::decide::{decide, Decision, IssuerState};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    fn cr(group: &str, conds: &[(&str, bool, &str)]) -> CertificateRequest {
        let mut cr = CertificateRequest::new(
            "req",
            CertificateRequestSpec {
                request: b"-----BEGIN CERTIFICATE REQUEST-----".to_vec(),
                issuer_ref: IssuerRef {
                    name: "mesh".into(),
                    kind: Some("PKIClusterIssuer".into()),
                    group: Some(group.into()),
                },
                usages: Some(vec!["server auth".into()]),
                username: Some("system:serviceaccount:apps:web".into()),
                ..Default::default()
            },
        );
        cr.metadata.namespace = Some("apps".into());
        cr.metadata.uid = Some("u1".into());
        cr.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
        cr.metadata.annotations = Some(BTreeMap::from([(
            "cert-manager.io/certificate-name".to_string(),
            "web".to_string(),
        )]));
        cr.status = Some(CertificateRequestStatus {
            conditions: conds
                .iter()
                .map(|(t, s, r)| Condition::new(t, *s, r, "a long message"))
                .collect(),
            certificate: Some(vec![b'x'; 2000]),
            ca: Some(vec![b'y'; 1000]),
            failure_time: None,
        });
        cr
    }

    fn ready(_: &crate::api::issuer::IssuerKey) -> IssuerState {
        IssuerState::Ready
    }

    #[test]
    fn finished_requests_keep_only_what_says_they_are_finished() {
        for done in [
            [("Approved", true, "ok"), ("Ready", true, "Issued")],
            [("Approved", true, "ok"), ("Ready", false, "Failed")],
            [("Denied", true, "no"), ("Ready", false, "Denied")],
        ] {
            let mut c = cr("pki-issuer.io", &done);
            certificate_request(&mut c);
            assert_eq!(decide(&c, ready), Decision::Skip, "{done:?}");
            assert!(c.spec.request.is_empty() && c.spec.usages.is_none());
            let st = c.status.as_ref().unwrap();
            assert!(st.certificate.is_none() && st.ca.is_none());
            assert!(st.conditions.iter().all(|c| c.message.is_none()));
            assert!(c.metadata.managed_fields.is_none() && c.metadata.annotations.is_none());
            assert_eq!(c.metadata.uid.as_deref(), Some("u1"));
        }
    }

    #[test]
    fn unfinished_requests_of_ours_keep_what_signing_reads() {
        let mut c = cr("pki-issuer.io", &[("Approved", true, "ok")]);
        let before = c.spec.clone();
        certificate_request(&mut c);
        assert_eq!(c.spec, before);
        assert!(matches!(decide(&c, ready), Decision::Sign(_)));
        let st = c.status.as_ref().unwrap();
        assert_eq!(
            st.conditions[0].message.as_deref(),
            Some("a long message"),
            "conditions are merged on write"
        );
        assert!(c.metadata.managed_fields.is_none());
        // A denied request still gets its message (it is not finished until marked).
        let mut d = cr("pki-issuer.io", &[("Denied", true, "PolicyDenied")]);
        certificate_request(&mut d);
        assert!(
            matches!(decide(&d, ready), Decision::MarkDenied(_, m) if m.contains("a long message"))
        );
    }

    #[test]
    fn foreign_requests_keep_only_their_issuer_ref() {
        let mut c = cr("cert-manager.io", &[("Approved", true, "ok")]);
        certificate_request(&mut c);
        assert!(c.spec.request.is_empty() && c.status.is_none());
        assert_eq!(c.spec.issuer_ref.group.as_deref(), Some("cert-manager.io"));
        assert_eq!(decide(&c, ready), Decision::Skip);
    }

    fn csr(signer: &str, conds: &[&str], cert: bool) -> CertificateSigningRequest {
        let mut c =
            crate::controllers::requests::certificate_signing_request::tests::csr(signer, conds);
        c.spec.request = ByteString(b"csr".to_vec());
        c.spec.username = Some("system:serviceaccount:apps:web".into());
        let status = c.status.as_mut().unwrap();
        for cond in status.conditions.iter_mut().flatten() {
            cond.message = Some("m".into());
        }
        status.certificate = cert.then(|| ByteString(vec![b'c'; 2000]));
        c.metadata.annotations = Some(BTreeMap::from([
            (DURATION_ANNOTATION.to_string(), "1h".to_string()),
            ("other".to_string(), "x".to_string()),
        ]));
        c
    }

    #[test]
    fn csrs_are_slimmed_without_changing_the_decision() {
        let ours = "pkiclusterissuers.pki-issuer.io/mesh";
        let mut signed = csr(ours, &["Approved"], true);
        certificate_signing_request(&mut signed);
        assert_eq!(
            decide(&signed, ready),
            Decision::Skip,
            "a signed CSR stays signed"
        );
        assert!(signed.spec.request.0.is_empty());
        assert_eq!(
            signed
                .status
                .as_ref()
                .unwrap()
                .certificate
                .as_ref()
                .unwrap()
                .0,
            SIGNED_MARKER
        );
        let mut failed = csr(ours, &["Approved", "Failed"], false);
        certificate_signing_request(&mut failed);
        assert_eq!(decide(&failed, ready), Decision::Skip);

        let mut pending = csr(ours, &["Approved"], false);
        certificate_signing_request(&mut pending);
        assert!(matches!(decide(&pending, ready), Decision::Sign(_)));
        assert_eq!(pending.spec.request.0, b"csr");
        assert_eq!(
            crate::controllers::requests::certificate_signing_request::requested_duration(&pending),
            Ok(Some(std::time::Duration::from_secs(3600)))
        );
        let annotations = pending.metadata.annotations.as_ref().unwrap();
        assert!(!annotations.contains_key("other"));

        let mut foreign = csr("kubernetes.io/kubelet-serving", &["Approved"], false);
        certificate_signing_request(&mut foreign);
        assert!(foreign.spec.request.0.is_empty() && foreign.status.is_none());
        assert_eq!(decide(&foreign, ready), Decision::Skip);
    }
}
