//! The status an issuer should have after a check. Pure.

use crate::api::condition::{self, Condition};
use crate::api::issuer::{CertSummary, IssuerStatus};
use crate::api::reason::Reason;
use crate::pki::SignerInfo;
use crate::signers::load::LoadError;

pub use crate::issuance::rfc3339;

/// The pure decision: the status an issuer should have after a check.
pub fn decide_status(
    existing: Option<&IssuerStatus>,
    generation: Option<i64>,
    result: Result<(&SignerInfo, &[SignerInfo]), &LoadError>,
) -> IssuerStatus {
    let existing_conditions = existing.map(|s| s.conditions.as_slice()).unwrap_or(&[]);
    let (ready, signer, anchors) = match result {
        Ok((signer, anchors)) => (
            Condition::new(
                "Ready",
                true,
                Reason::Checked.as_str(),
                format!(
                    "signer {} is valid until {} and chains to the trust anchors",
                    signer.subject,
                    rfc3339(signer.not_after)
                ),
            ),
            Some(summary(signer)),
            anchors.iter().map(summary).collect(),
        ),
        Err(e) => {
            let reason = if e.is_retryable() {
                Reason::Pending.as_str()
            } else {
                Reason::Failed.as_str()
            };
            (
                Condition::new("Ready", false, reason, e.to_string()),
                None,
                Vec::new(),
            )
        }
    };
    IssuerStatus {
        conditions: vec![condition::merge(
            existing_conditions,
            ready.with_generation(generation),
        )],
        signer,
        trust_anchors: anchors,
    }
}

/// Append remarks of the check (e.g. a Vault role's limits) to a Ready message.
pub fn add_notes(status: &mut IssuerStatus, notes: &[String]) {
    if notes.is_empty() {
        return;
    }
    if let Some(c) = status.conditions.iter_mut().find(|c| c.type_ == "Ready") {
        let mut m = c.message.clone().unwrap_or_default();
        for n in notes {
            m.push_str("; note: ");
            m.push_str(n);
        }
        c.message = Some(m);
    }
}

/// Whether two statuses differ in anything but transition times.
pub fn status_changed(old: Option<&IssuerStatus>, new: &IssuerStatus) -> bool {
    let Some(old) = old else { return true };
    let old_ready = condition::find(&old.conditions, "Ready");
    let new_ready = condition::find(&new.conditions, "Ready");
    let same_ready = match (old_ready, new_ready) {
        (Some(a), Some(b)) => a.same_state(b),
        (None, None) => true,
        _ => false,
    };
    !same_ready || old.signer != new.signer || old.trust_anchors != new.trust_anchors
}

fn summary(info: &SignerInfo) -> CertSummary {
    CertSummary {
        subject: info.subject.clone(),
        serial_number: info.serial_hex.clone(),
        not_before: rfc3339(info.not_before),
        not_after: rfc3339(info.not_after),
        sha256_fingerprint: info.sha256_fingerprint.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(subject: &str) -> SignerInfo {
        let t = time::OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap();
        SignerInfo {
            subject: subject.into(),
            serial_hex: "01".into(),
            not_before: t - time::Duration::days(1),
            not_after: t,
            sha256_fingerprint: "ab".into(),
        }
    }

    #[test]
    fn ready_when_checked_with_generation() {
        let s = info("CN=int");
        let st = decide_status(None, Some(3), Ok((&s, &[info("CN=root")])));
        let c = &st.conditions[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("True", Some("Checked"))
        );
        assert_eq!(c.observed_generation, Some(3));
        assert_eq!(
            st.signer.as_ref().unwrap().not_after,
            "2033-05-18T03:33:20Z"
        );
        assert_eq!(st.trust_anchors[0].subject, "CN=root");
    }

    #[test]
    fn missing_is_pending_and_bad_material_is_failed() {
        let missing = LoadError::Missing("signer Secret ns/x not found".into());
        let st = decide_status(None, Some(1), Err(&missing));
        assert_eq!(st.conditions[0].reason.as_deref(), Some("Pending"));
        assert_eq!(
            st.conditions[0].message.as_deref(),
            Some("signer Secret ns/x not found")
        );
        let bad = LoadError::Invalid("not a CA".into());
        let st = decide_status(None, Some(1), Err(&bad));
        assert_eq!(st.conditions[0].reason.as_deref(), Some("Failed"));
        assert!(st.signer.is_none());
    }

    #[test]
    fn unchanged_status_is_not_rewritten() {
        let s = info("CN=int");
        let a = decide_status(None, Some(1), Ok((&s, &[])));
        let b = decide_status(Some(&a), Some(1), Ok((&s, &[])));
        assert!(!status_changed(Some(&a), &b));
        let c = decide_status(Some(&a), Some(2), Ok((&s, &[])));
        assert!(
            status_changed(Some(&a), &c),
            "a new generation must be reported"
        );
    }
}
