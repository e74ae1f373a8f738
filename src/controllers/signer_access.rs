//! May the requester of a Kubernetes CertificateSigningRequest use the namespaced issuer its
//! signerName names? CSRs are cluster-scoped, so anyone allowed to create one could otherwise
//! name any namespace's `PKIIssuer` and obtain that namespace's identities.
//!
//! Like cert-manager's CSR controllers (`userCanReferenceSigner` in
//! `pkg/controller/certificatesigningrequests/sync.go`), the requester recorded by the API
//! server (`spec.username`, `groups`, `uid`, `extra`) must be allowed verb `reference` on
//! resource `signers` in API group `pki-issuer.io`, in the issuer's namespace, for the issuer's
//! name, or for the name `*` (all issuers of that namespace). One SubjectAccessReview per name,
//! the issuer's first. `PKIClusterIssuer`s serve every namespace by design and need no review
//! (cert-manager checks namespaced `Issuer`s only, too).
//!
//! [`reviews`] and [`verdict`] are pure; [`check`] talks to the API.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus,
};
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::PostParams;
use kube::{Api, Client};

use crate::api::issuer::{IssuerKey, IssuerKind};
use crate::api::GROUP;

/// The verb a requester needs on `signers`.
pub const VERB: &str = "reference";
/// The resource (in API group [`GROUP`]) the verb applies to.
pub const RESOURCE: &str = "signers";
/// The resource name that stands for every issuer of a namespace.
pub const ANY_NAME: &str = "*";

/// The reviews one CSR needs: the same requester and attributes, one per resource name.
#[derive(Debug, Clone, PartialEq)]
pub struct Reviews {
    /// Who asked, for messages: `user "name"`, or `groups [...]` when there is no user name.
    pub requester: String,
    /// The issuer's namespace.
    pub namespace: String,
    /// The issuer's name.
    pub name: String,
    /// To create in order; the first allowed one grants access.
    pub reviews: Vec<SubjectAccessReview>,
}

/// What the reviews need for a CSR, decided before any API call.
#[derive(Debug, Clone, PartialEq)]
pub enum Needed {
    /// A cluster issuer: no review.
    Nothing,
    /// Ask the API server.
    Review(Reviews),
    /// Refuse without asking: the CSR names no requester at all (no username, no groups;
    /// the API server always records one, so the object was not created through it).
    Refuse(String),
}

/// The outcome of the reviews.
#[derive(Debug, Clone, PartialEq)]
pub enum Access {
    /// One review allowed the reference.
    Allowed,
    /// No review allowed it: the message names the missing permission and the requester.
    Denied(String),
}

/// The reviews `csr` needs before it may be signed by `key`. Pure.
pub fn reviews(csr: &CertificateSigningRequest, key: &IssuerKey) -> Needed {
    let (IssuerKind::Namespaced, Some(namespace)) = (key.kind, key.namespace.as_ref()) else {
        return Needed::Nothing;
    };
    let spec = &csr.spec;
    let user = spec.username.clone().filter(|u| !u.is_empty());
    let groups = spec.groups.clone().filter(|g| !g.is_empty());
    if user.is_none() && groups.is_none() {
        return Needed::Refuse(format!(
            "refused before signing: the CertificateSigningRequest names no requester \
             (spec.username and spec.groups are empty), so its permission to {VERB} {key} \
             cannot be checked"
        ));
    }
    let names: &[&str] = if key.name == ANY_NAME {
        &[ANY_NAME]
    } else {
        &[key.name.as_str(), ANY_NAME]
    };
    let reviews = names
        .iter()
        .map(|name| SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.clone(),
                groups: groups.clone(),
                uid: spec.uid.clone().filter(|u| !u.is_empty()),
                extra: spec.extra.clone().filter(|e| !e.is_empty()),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(GROUP.to_string()),
                    resource: Some(RESOURCE.to_string()),
                    verb: Some(VERB.to_string()),
                    namespace: Some(namespace.clone()),
                    name: Some(name.to_string()),
                    version: Some("*".to_string()),
                    ..Default::default()
                }),
                non_resource_attributes: None,
            },
            ..Default::default()
        })
        .collect();
    Needed::Review(Reviews {
        requester: match &user {
            Some(u) => format!("user {u:?}"),
            None => format!("groups {:?}", groups.clone().unwrap_or_default()),
        },
        namespace: namespace.clone(),
        name: key.name.clone(),
        reviews,
    })
}

/// Whether the answers (in the order of `r.reviews`) grant the reference. Pure.
///
/// Only `allowed: true` grants; a missing status, `denied`, or an evaluation error refuse.
/// The authorizer's reasons and evaluation errors (e.g. a binding to a missing Role) are
/// appended to the message.
pub fn verdict(r: &Reviews, answers: &[Option<SubjectAccessReviewStatus>]) -> Access {
    if answers.iter().flatten().any(|s| s.allowed) {
        return Access::Allowed;
    }
    let mut errors: Vec<&str> = answers
        .iter()
        .flatten()
        .flat_map(|s| [s.reason.as_deref(), s.evaluation_error.as_deref()])
        .flatten()
        .filter(|e| !e.is_empty())
        .collect();
    errors.dedup();
    let mut message = format!(
        "refused before signing: requester {} may not reference PKIIssuer {}/{}: it needs \
         verb {VERB:?} on resource {RESOURCE:?} in API group {GROUP:?} in namespace {:?} for \
         resource name {:?} (or {ANY_NAME:?}), granted by a Role and RoleBinding in {:?}",
        r.requester, r.namespace, r.name, r.namespace, r.name, r.namespace
    );
    if !errors.is_empty() {
        message.push_str(&format!("; the authorizer reported: {}", errors.join("; ")));
    }
    Access::Denied(message)
}

/// Create the reviews in order until one allows. An API error (including 403 when the
/// controller may not create SubjectAccessReviews) is returned, never taken as allowed.
pub async fn check(client: &Client, r: &Reviews) -> Result<Access, kube::Error> {
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let mut answers = Vec::with_capacity(r.reviews.len());
    for review in &r.reviews {
        let answer = api.create(&PostParams::default(), review).await?.status;
        let allowed = answer.as_ref().is_some_and(|s| s.allowed);
        answers.push(answer);
        if allowed {
            break;
        }
    }
    Ok(verdict(r, &answers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequestSpec;
    use std::collections::BTreeMap;

    fn csr(user: Option<&str>, groups: &[&str]) -> CertificateSigningRequest {
        CertificateSigningRequest {
            spec: CertificateSigningRequestSpec {
                username: user.map(String::from),
                groups: (!groups.is_empty())
                    .then(|| groups.iter().map(|g| g.to_string()).collect()),
                uid: Some("1234".into()),
                extra: Some(BTreeMap::from([(
                    "authentication.kubernetes.io/credential-id".to_string(),
                    vec!["JTI=abc".to_string()],
                )])),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn key(signer: &str) -> IssuerKey {
        IssuerKey::from_signer_name(signer).unwrap()
    }

    fn status(allowed: bool, error: Option<&str>) -> Option<SubjectAccessReviewStatus> {
        Some(SubjectAccessReviewStatus {
            allowed,
            evaluation_error: error.map(String::from),
            ..Default::default()
        })
    }

    fn review(needed: Needed) -> Reviews {
        match needed {
            Needed::Review(r) => r,
            other => panic!("expected reviews, got {other:?}"),
        }
    }

    #[test]
    fn cluster_issuers_need_no_review() {
        let c = csr(Some("system:serviceaccount:team-a:web"), &[]);
        assert_eq!(
            reviews(&c, &key("pkiclusterissuers.pki-issuer.io/mesh")),
            Needed::Nothing
        );
    }

    #[test]
    fn namespaced_issuers_need_the_issuer_name_then_star() {
        let c = csr(
            Some("system:serviceaccount:team-a:web"),
            &["system:serviceaccounts", "system:serviceaccounts:team-a"],
        );
        let r = review(reviews(&c, &key("pkiissuers.pki-issuer.io/team-b.apps")));
        assert_eq!(
            (r.requester.as_str(), r.namespace.as_str(), r.name.as_str()),
            (
                "user \"system:serviceaccount:team-a:web\"",
                "team-b",
                "apps"
            )
        );
        let names: Vec<_> = r
            .reviews
            .iter()
            .map(|s| {
                s.spec
                    .resource_attributes
                    .as_ref()
                    .unwrap()
                    .name
                    .clone()
                    .unwrap()
            })
            .collect();
        assert_eq!(names, ["apps", "*"]);
        for sar in &r.reviews {
            let s = &sar.spec;
            assert_eq!(s.user.as_deref(), Some("system:serviceaccount:team-a:web"));
            assert_eq!(s.groups.as_ref().unwrap().len(), 2);
            assert_eq!(s.uid.as_deref(), Some("1234"), "uid is passed on");
            assert_eq!(
                s.extra.as_ref().unwrap()["authentication.kubernetes.io/credential-id"],
                ["JTI=abc"],
                "extra is passed on"
            );
            let a = s.resource_attributes.as_ref().unwrap();
            assert_eq!(
                (
                    a.group.as_deref(),
                    a.resource.as_deref(),
                    a.verb.as_deref(),
                    a.namespace.as_deref(),
                    a.subresource.as_deref(),
                ),
                (
                    Some("pki-issuer.io"),
                    Some("signers"),
                    Some("reference"),
                    Some("team-b"),
                    None
                )
            );
            assert!(s.non_resource_attributes.is_none());
        }
    }

    #[test]
    fn a_csr_without_requester_is_refused_without_asking() {
        let c = csr(None, &[]);
        let Needed::Refuse(msg) = reviews(&c, &key("pkiissuers.pki-issuer.io/team-b.apps")) else {
            panic!("no requester must be refused");
        };
        assert!(msg.starts_with("refused before signing: "), "{msg}");
        assert!(msg.contains("names no requester"), "{msg}");
        let mut c = csr(Some(""), &[]);
        c.spec.groups = Some(vec![]);
        assert!(matches!(
            reviews(&c, &key("pkiissuers.pki-issuer.io/team-b.apps")),
            Needed::Refuse(_)
        ));
        // Groups alone are a requester (the API server accepts reviews with only groups).
        let c = csr(None, &["ops"]);
        let r = review(reviews(&c, &key("pkiissuers.pki-issuer.io/team-b.apps")));
        assert_eq!(r.reviews[0].spec.user, None);
        assert_eq!(r.requester, r#"groups ["ops"]"#);
    }

    #[test]
    fn only_an_allowed_answer_grants() {
        let c = csr(Some("system:serviceaccount:team-a:web"), &[]);
        let r = review(reviews(&c, &key("pkiissuers.pki-issuer.io/team-b.apps")));
        assert_eq!(verdict(&r, &[status(true, None)]), Access::Allowed);
        assert_eq!(
            verdict(&r, &[status(false, None), status(true, None)]),
            Access::Allowed,
            "the `*` review grants every issuer of the namespace"
        );
        for answers in [
            vec![status(false, None), status(false, None)],
            vec![None, None],
            vec![],
            vec![status(false, Some("webhook authorizer timed out"))],
        ] {
            let Access::Denied(msg) = verdict(&r, &answers) else {
                panic!("{answers:?} must not grant");
            };
            assert_eq!(
                msg.split("; the authorizer").next().unwrap(),
                "refused before signing: requester user \"system:serviceaccount:team-a:web\" may not \
                 reference PKIIssuer team-b/apps: it needs verb \"reference\" on resource \
                 \"signers\" in API group \"pki-issuer.io\" in namespace \"team-b\" for resource \
                 name \"apps\" (or \"*\"), granted by a Role and RoleBinding in \"team-b\""
            );
        }
        let mut rbac = status(false, None);
        rbac.as_mut().unwrap().reason =
            Some("RBAC: [role.rbac.authorization.k8s.io \"x\" not found]".into());
        let Access::Denied(msg) = verdict(&r, &[rbac.clone(), rbac]) else {
            panic!()
        };
        assert!(
            msg.ends_with(
                "; the authorizer reported: RBAC: [role.rbac.authorization.k8s.io \"x\" not found]"
            ),
            "{msg}"
        );
        let Access::Denied(msg) = verdict(&r, &[status(false, Some("webhook down"))]) else {
            panic!()
        };
        assert!(
            msg.ends_with("the authorizer reported: webhook down"),
            "{msg}"
        );
        let mut denied = status(true, None);
        denied.as_mut().unwrap().denied = Some(true);
        denied.as_mut().unwrap().allowed = false;
        assert!(matches!(verdict(&r, &[denied]), Access::Denied(_)));
    }
}
