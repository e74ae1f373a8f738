//! `spec.podCertificates`: how a pod's identity becomes the names of its certificate, for
//! Kubernetes PodCertificateRequests. Pure: templates in, names out.
//!
//! The only placeholders are `{namespace}` and `{serviceAccount}`; their values are the
//! PodCertificateRequest's namespace and `spec.serviceAccountName`, which the API server
//! attested (NodeRestriction checks them against the live Pod). Each value must be a valid
//! Kubernetes name before it is substituted, so no value can add a path segment, a label
//! separator it could not have as a name, a scheme or a wildcard.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::check_object_name;

/// Entries of `podCertificates.dnsNameTemplates`.
pub const MAX_DNS_NAME_TEMPLATES: usize = 8;
/// Longest `podCertificates.dnsNameTemplates` entry.
pub const MAX_DNS_NAME_TEMPLATE_LEN: usize = 253;
/// Longest `podCertificates.uriTemplate`.
pub const MAX_URI_TEMPLATE_LEN: usize = 512;

const NAMESPACE: &str = "{namespace}";
const SERVICE_ACCOUNT: &str = "{serviceAccount}";

/// How a pod's identity becomes names: without it the issuer signs no PodCertificateRequest.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodCertificatesSpec {
    /// The one URI SAN, e.g. `spiffe://cluster.local/ns/{namespace}/sa/{serviceAccount}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub uri_template: Option<String>,
    /// DNS SANs, e.g. `{serviceAccount}.{namespace}.svc`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8), inner(length(min = 1, max = 253)))]
    pub dns_name_templates: Vec<String>,
}

/// The names of one pod's certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodNames {
    /// The URI SAN, if the issuer has a `uriTemplate`.
    pub uri: Option<String>,
    /// The DNS SANs.
    pub dns: Vec<String>,
}

impl PodCertificatesSpec {
    /// The spec is usable: bounded, at least one template, no placeholder but ours.
    pub fn check(&self) -> Result<(), String> {
        if self.uri_template.is_none() && self.dns_name_templates.is_empty() {
            return Err(
                "podCertificates needs a uriTemplate or at least one dnsNameTemplates entry".into(),
            );
        }
        if self.dns_name_templates.len() > MAX_DNS_NAME_TEMPLATES {
            return Err(format!(
                "podCertificates.dnsNameTemplates has {} entries; at most {MAX_DNS_NAME_TEMPLATES} are allowed",
                self.dns_name_templates.len()
            ));
        }
        let all = self
            .uri_template
            .iter()
            .map(|t| {
                (
                    "podCertificates.uriTemplate".to_string(),
                    t,
                    MAX_URI_TEMPLATE_LEN,
                )
            })
            .chain(self.dns_name_templates.iter().enumerate().map(|(i, t)| {
                (
                    format!("podCertificates.dnsNameTemplates[{i}]"),
                    t,
                    MAX_DNS_NAME_TEMPLATE_LEN,
                )
            }));
        for (field, template, max) in all {
            if template.is_empty() || template.len() > max {
                return Err(format!(
                    "{field} is {} characters long; 1 to {max} are allowed",
                    template.len()
                ));
            }
            let rest = template.replace(NAMESPACE, "").replace(SERVICE_ACCOUNT, "");
            if rest.contains(['{', '}']) {
                return Err(format!(
                    "{field} {template:?} has a placeholder other than {NAMESPACE} and {SERVICE_ACCOUNT}"
                ));
            }
        }
        Ok(())
    }

    /// The names for a pod of ServiceAccount `service_account` in `namespace`. Each value is
    /// checked as a Kubernetes name first (a namespace is a DNS-1123 label).
    pub fn render(&self, namespace: &str, service_account: &str) -> Result<PodNames, String> {
        self.check()?;
        check_object_name("Namespace", namespace)?;
        if namespace.len() > 63 || namespace.contains('.') {
            return Err(format!("namespace {namespace:?} is not a DNS-1123 label"));
        }
        check_object_name("ServiceAccount", service_account)?;
        let fill = |t: &str| {
            t.replace(NAMESPACE, namespace)
                .replace(SERVICE_ACCOUNT, service_account)
        };
        Ok(PodNames {
            uri: self.uri_template.as_deref().map(fill),
            dns: self.dns_name_templates.iter().map(|t| fill(t)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spiffe() -> PodCertificatesSpec {
        PodCertificatesSpec {
            uri_template: Some("spiffe://cluster.local/ns/{namespace}/sa/{serviceAccount}".into()),
            dns_name_templates: vec!["{serviceAccount}.{namespace}.svc".into()],
        }
    }

    #[test]
    fn maps_namespace_and_service_account() {
        let names = spiffe().render("apps", "web").unwrap();
        assert_eq!(
            names.uri.as_deref(),
            Some("spiffe://cluster.local/ns/apps/sa/web")
        );
        assert_eq!(names.dns, vec!["web.apps.svc".to_string()]);
        let dotted = spiffe().render("apps", "web.v2").unwrap();
        assert_eq!(dotted.dns, vec!["web.v2.apps.svc".to_string()]);
    }

    #[test]
    fn hostile_values_are_refused_before_substitution() {
        for (ns, sa) in [
            ("apps", "../kube-system/sa/admin"),
            ("apps", "web/sa/admin"),
            ("apps", "*"),
            ("apps", "WEB"),
            ("apps", ""),
            ("apps", "web?x"),
            ("apps", "web%2fadmin"),
            ("apps", "a..b"),
            ("kube-system/sa/x", "web"),
            ("apps.evil", "web"),
            ("", "web"),
            (&*"n".repeat(64), "web"),
            ("apps", &*"s".repeat(254)),
            ("apps", "web\u{0}"),
            ("apps", "wéb"),
        ] {
            assert!(
                spiffe().render(ns, sa).is_err(),
                "{ns:?}/{sa:?} must be refused"
            );
        }
    }

    #[test]
    fn templates_are_bounded_and_know_two_placeholders() {
        assert!(spiffe().check().is_ok());
        assert!(
            PodCertificatesSpec::default().check().is_err(),
            "no template"
        );
        let unknown = PodCertificatesSpec {
            uri_template: Some("spiffe://x/{podName}".into()),
            ..Default::default()
        };
        assert!(unknown.check().unwrap_err().contains("placeholder"));
        let stray = PodCertificatesSpec {
            dns_name_templates: vec!["{namespace.svc".into()],
            ..Default::default()
        };
        assert!(stray.check().is_err());
        let many = PodCertificatesSpec {
            dns_name_templates: vec!["a.svc".into(); MAX_DNS_NAME_TEMPLATES + 1],
            ..Default::default()
        };
        assert!(many.check().unwrap_err().contains("at most 8"));
        let long = PodCertificatesSpec {
            uri_template: Some(format!("spiffe://{}", "a".repeat(MAX_URI_TEMPLATE_LEN))),
            ..Default::default()
        };
        assert!(long.check().is_err());
        assert!(long.render("apps", "web").is_err(), "render checks too");
    }
}
