//! The pure parts of trust distribution: names, the bundle text, the condition.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::condition::Condition;
use crate::api::reason::Reason;

/// The condition type trust distribution reports on an issuer.
pub const CONDITION: &str = "TrustDistributed";
/// Suffix of the ClusterTrustBundle name after the signer-name prefix.
pub const BUNDLE_SUFFIX: &str = "trust-anchors";
/// Label on every object pki-issuer publishes (value `true`), so cleanup lists only ours.
pub const MANAGED_LABEL: &str = "pki-issuer.io/trust-distribution";
/// Annotation naming the issuer an object was published for (`IssuerKey`'s display form).
pub const ISSUER_ANNOTATION: &str = "pki-issuer.io/issuer";

/// Whether `meta` carries pki-issuer's label and an owner reference to the issuer `uid`.
pub fn owned_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.labels
        .as_ref()
        .is_some_and(|l| l.get(MANAGED_LABEL).map(String::as_str) == Some("true"))
        && meta
            .owner_references
            .as_ref()
            .is_some_and(|o| o.iter().any(|r| r.uid == uid))
}

/// The ClusterTrustBundle name for a signer: the signer name with `/` as `:` (the prefix the
/// API server requires of a bundle with `spec.signerName`), then `:trust-anchors`.
pub fn cluster_trust_bundle_name(signer_name: &str) -> String {
    format!("{}:{BUNDLE_SUFFIX}", signer_name.replace('/', ":"))
}

/// The published bundle: each anchor once (first occurrence wins, order kept, so an unchanged
/// anchor set never rewrites the object), as bare `CERTIFICATE` PEM blocks with no headers.
pub fn bundle_pem(anchors_der: &[Vec<u8>]) -> String {
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<Vec<u8>> = anchors_der
        .iter()
        .filter(|d| seen.insert(d.as_slice()))
        .cloned()
        .collect();
    crate::pki::certs_to_pem(&unique)
}

/// What one distribution pass found, for the condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything requested is published and current.
    Published {
        /// Short description of what is published.
        what: String,
    },
    /// Nothing was (re)published: the issuer check failed; what was published stays.
    Held {
        /// The check's error.
        why: String,
    },
    /// Some of it could not be published (foreign ConfigMap, API missing, not allowed).
    Incomplete {
        /// The reason.
        reason: Reason,
        /// What is published and what is not, and why.
        message: String,
    },
}

impl Outcome {
    /// The `TrustDistributed` condition for this outcome.
    pub fn condition(&self) -> Condition {
        match self {
            Outcome::Published { what } => {
                Condition::new(CONDITION, true, Reason::Published.as_str(), what.clone())
            }
            Outcome::Held { why } => Condition::new(
                CONDITION,
                false,
                Reason::NotPublished.as_str(),
                format!(
                    "trust anchors not published: the issuer check failed ({why}); the previously published bundle is kept"
                ),
            ),
            Outcome::Incomplete { reason, message } => {
                Condition::new(CONDITION, false, reason.as_str(), message.clone())
            }
        }
    }
}

/// How many names a message lists before `and N more`.
const LISTED: usize = 5;

/// `a, b, c and 7 more`, bounded.
pub fn list_bounded(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > LISTED {
        s.push_str(&format!(" and {} more", items.len() - LISTED));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_name_is_the_signer_name_with_colons() {
        assert_eq!(
            cluster_trust_bundle_name("pkiclusterissuers.pki-issuer.io/mesh"),
            "pkiclusterissuers.pki-issuer.io:mesh:trust-anchors"
        );
    }

    #[test]
    fn bundle_is_deduplicated_bare_pem() {
        let a = b"first anchor".to_vec();
        let b = b"second anchor".to_vec();
        let pem = bundle_pem(&[a.clone(), b.clone(), a.clone()]);
        let blocks = pem::parse_many(&pem).unwrap();
        assert_eq!(blocks.len(), 2);
        assert!(blocks
            .iter()
            .all(|p| p.tag() == "CERTIFICATE" && p.headers().iter().next().is_none()));
        assert_eq!(blocks[0].contents(), a.as_slice());
        assert_eq!(blocks[1].contents(), b.as_slice());
        assert!(!pem.contains("\r"));
        assert_eq!(
            bundle_pem(&[a.clone(), b.clone()]),
            pem,
            "stable for the same set"
        );
    }

    #[test]
    fn held_condition_says_the_old_bundle_stays() {
        let c = Outcome::Held {
            why: "signer does not chain to the trust anchors".into(),
        }
        .condition();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some("NotPublished"))
        );
        assert!(c
            .message
            .unwrap()
            .contains("previously published bundle is kept"));
    }

    #[test]
    fn lists_are_bounded() {
        let items: Vec<String> = (0..12).map(|i| format!("ns{i}")).collect();
        assert_eq!(list_bounded(&items), "ns0, ns1, ns2, ns3, ns4 and 7 more");
        assert_eq!(list_bounded(&items[..2]), "ns0, ns1");
    }
}
