//! RBAC authorization from Role/ClusterRole/RoleBinding/ClusterRoleBinding objects.

use serde_json::Value;

use crate::auth::UserInfo;
use crate::store::Inner;

/// What a request wants to do (authorizer attributes).
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    /// Verb (`get`, `list`, `watch`, `create`, ..., or a custom verb like `approve`).
    pub verb: String,
    /// Resource request (vs. non-resource URL).
    pub resource_request: bool,
    /// API group.
    pub group: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Object name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// URL path (non-resource requests).
    pub path: String,
}

impl Attributes {
    /// kube-apiserver's forbidden message body (`User "x" cannot get resource ...`).
    pub fn forbidden_message(&self, user: &str) -> String {
        if !self.resource_request {
            return format!("User {user:?} cannot {} path {:?}", self.verb, self.path);
        }
        let mut res = self.resource.clone();
        if !self.subresource.is_empty() {
            res = format!("{res}/{}", self.subresource);
        }
        if self.namespace.is_empty() {
            format!(
                "User {user:?} cannot {} resource {res:?} in API group {:?} at the cluster scope",
                self.verb, self.group
            )
        } else {
            format!(
                "User {user:?} cannot {} resource {res:?} in API group {:?} in the namespace {:?}",
                self.verb, self.group, self.namespace
            )
        }
    }
}

fn strs(v: &Value, k: &str) -> Vec<String> {
    crate::util::str_array(v.get(k))
}

/// Does one PolicyRule allow the request?
pub fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    let verbs = strs(rule, "verbs");
    if !verbs.iter().any(|v| v == "*" || *v == a.verb) {
        return false;
    }
    if !a.resource_request {
        return strs(rule, "nonResourceURLs").iter().any(|u| {
            u == "*" || *u == a.path || (u.ends_with('*') && a.path.starts_with(&u[..u.len() - 1]))
        });
    }
    if !strs(rule, "apiGroups")
        .iter()
        .any(|g| g == "*" || *g == a.group)
    {
        return false;
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let res_ok = strs(rule, "resources").iter().any(|r| {
        r == "*"
            || *r == combined
            || (a.subresource.is_empty() && *r == a.resource)
            || (!a.subresource.is_empty()
                && (*r == format!("*/{}", a.subresource) || *r == format!("{}/*", a.resource)))
    });
    if !res_ok {
        return false;
    }
    let names = strs(rule, "resourceNames");
    names.is_empty() || names.contains(&a.name)
}

fn subject_matches(s: &Value, user: &UserInfo, binding_ns: &str) -> bool {
    let kind = s.get("kind").and_then(Value::as_str).unwrap_or_default();
    let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "User" => user.name == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let ns = s
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_ns);
            user.name == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

/// Requests every authenticated user may make (system:discovery, system:basic-user, system:public-info-viewer).
fn default_allowed(a: &Attributes) -> bool {
    if !a.resource_request {
        let p = a.path.as_str();
        return a.verb == "get"
            && (p == "/api"
                || p.starts_with("/api/")
                || p == "/apis"
                || p.starts_with("/apis/")
                || p == "/version"
                || p.starts_with("/openapi")
                || p == "/healthz"
                || p == "/livez"
                || p == "/readyz");
    }
    a.verb == "create"
        && ((a.group == "authorization.k8s.io"
            && (a.resource == "selfsubjectaccessreviews"
                || a.resource == "selfsubjectrulesreviews"))
            || (a.group == "authentication.k8s.io" && a.resource == "selfsubjectreviews"))
}

/// Authorize: `Ok(())` if allowed, otherwise `Err(reason)` (usually empty, like RBAC's NoOpinion).
pub fn authorize(g: &Inner, user: &UserInfo, a: &Attributes) -> Result<(), String> {
    if user.is_master() || default_allowed(a) {
        return Ok(());
    }
    let mut errors = vec![];
    let rbac = |r: &str| ("rbac.authorization.k8s.io".to_string(), r.to_string());
    let check_role = |role_ref: &Value, binding_ns: &str, errors: &mut Vec<String>| -> bool {
        let kind = role_ref
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = role_ref
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let role = match kind {
            "ClusterRole" => g.get(&rbac("clusterroles"), "", name),
            "Role" => g.get(&rbac("roles"), binding_ns, name),
            _ => None,
        };
        match role {
            Some(r) => r
                .get("rules")
                .and_then(Value::as_array)
                .is_some_and(|rules| rules.iter().any(|rule| rule_allows(rule, a))),
            None => {
                let res = if kind == "Role" {
                    "role"
                } else {
                    "clusterrole"
                };
                errors.push(format!(
                    "{res}.rbac.authorization.k8s.io {name:?} not found"
                ));
                false
            }
        }
    };
    for (_, b) in g.iter(&rbac("clusterrolebindings"), None) {
        let subjects = b
            .get("subjects")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if subjects.iter().any(|s| subject_matches(s, user, ""))
            && check_role(&b["roleRef"], "", &mut errors)
        {
            return Ok(());
        }
    }
    if a.resource_request && !a.namespace.is_empty() {
        for (_, b) in g.iter(&rbac("rolebindings"), Some(&a.namespace)) {
            let subjects = b
                .get("subjects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if subjects
                .iter()
                .any(|s| subject_matches(s, user, &a.namespace))
                && check_role(&b["roleRef"], &a.namespace, &mut errors)
            {
                return Ok(());
            }
        }
    }
    if errors.is_empty() {
        Err(String::new())
    } else {
        Err(format!("RBAC: [{}]", errors.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: "ns".into(),
            path: String::new(),
        }
    }

    #[test]
    fn rule_matching() {
        let rule = json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]});
        assert!(rule_allows(&rule, &attrs("get", "", "secrets", "", "x")));
        assert!(!rule_allows(
            &rule,
            &attrs("delete", "", "secrets", "", "x")
        ));
        assert!(!rule_allows(
            &rule,
            &attrs("get", "apps", "secrets", "", "x")
        ));
        assert!(!rule_allows(
            &rule,
            &attrs("get", "", "secrets", "status", "x")
        ));
        let sub = json!({"apiGroups": ["cert-manager.io"], "resources": ["certificaterequests/status"], "verbs": ["patch"]});
        assert!(rule_allows(
            &sub,
            &attrs(
                "patch",
                "cert-manager.io",
                "certificaterequests",
                "status",
                "a"
            )
        ));
        assert!(!rule_allows(
            &sub,
            &attrs("patch", "cert-manager.io", "certificaterequests", "", "a")
        ));
        let star = json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]});
        assert!(rule_allows(
            &star,
            &attrs("deletecollection", "x", "y", "z", "")
        ));
        let names = json!({"apiGroups": ["certificates.k8s.io"], "resources": ["signers"], "verbs": ["approve"], "resourceNames": ["pkiissuers.pki-issuer.io/*"]});
        assert!(rule_allows(
            &names,
            &attrs(
                "approve",
                "certificates.k8s.io",
                "signers",
                "",
                "pkiissuers.pki-issuer.io/*"
            )
        ));
        assert!(!rule_allows(
            &names,
            &attrs("approve", "certificates.k8s.io", "signers", "", "other/*")
        ));
        let nr = json!({"nonResourceURLs": ["/metrics", "/debug/*"], "verbs": ["get"]});
        let mut a = Attributes {
            verb: "get".into(),
            path: "/debug/pprof".into(),
            ..Default::default()
        };
        assert!(rule_allows(&nr, &a));
        a.path = "/other".into();
        assert!(!rule_allows(&nr, &a));
    }

    #[test]
    fn forbidden_messages() {
        let a = attrs("get", "", "secrets", "", "x");
        assert_eq!(
            a.forbidden_message("system:serviceaccount:ns:sa"),
            r#"User "system:serviceaccount:ns:sa" cannot get resource "secrets" in API group "" in the namespace "ns""#
        );
        let mut c = attrs(
            "update",
            "certificates.k8s.io",
            "certificatesigningrequests",
            "approval",
            "c",
        );
        c.namespace.clear();
        assert_eq!(
            c.forbidden_message("u"),
            r#"User "u" cannot update resource "certificatesigningrequests/approval" in API group "certificates.k8s.io" at the cluster scope"#
        );
    }
}
