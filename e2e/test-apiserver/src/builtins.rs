//! Built-in resource types and the per-kind behaviour kube-apiserver applies to them.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult, Cause};
use crate::resources::{PrinterColumn, Registry, ResourceDef, VersionInfo};

/// Order in which kube-apiserver lists built-in groups in discovery.
pub const GROUP_ORDER: &[&str] = &[
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "monitoring.coreos.com",
];

struct B {
    gv: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    subs: &'static [&'static str],
}

const fn b(
    gv: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    subs: &'static [&'static str],
) -> B {
    B {
        gv,
        plural,
        kind,
        namespaced,
        short,
        subs,
    }
}

const BUILTINS: &[B] = &[
    b(
        "v1",
        "namespaces",
        "Namespace",
        false,
        &["ns"],
        &["status", "finalize"],
    ),
    b("v1", "secrets", "Secret", true, &[], &[]),
    b("v1", "configmaps", "ConfigMap", true, &["cm"], &[]),
    b(
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        &["sa"],
        &["token"],
    ),
    b("v1", "events", "Event", true, &["ev"], &[]),
    b("v1", "services", "Service", true, &["svc"], &["status"]),
    b("v1", "pods", "Pod", true, &["po"], &["status"]),
    b("v1", "endpoints", "Endpoints", true, &["ep"], &[]),
    b(
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        &["pvc"],
        &["status"],
    ),
    b("events.k8s.io/v1", "events", "Event", true, &["ev"], &[]),
    b("coordination.k8s.io/v1", "leases", "Lease", true, &[], &[]),
    b(
        "certificates.k8s.io/v1",
        "certificatesigningrequests",
        "CertificateSigningRequest",
        false,
        &["csr"],
        &["status", "approval"],
    ),
    // PodCertificateRequests: only what the request pipeline's fast tests need.
    b(
        "certificates.k8s.io/v1beta1",
        "podcertificaterequests",
        "PodCertificateRequest",
        true,
        &[],
        &["status"],
    ),
    b(
        "certificates.k8s.io/v1beta1",
        "clustertrustbundles",
        "ClusterTrustBundle",
        false,
        &[],
        &[],
    ),
    b(
        "rbac.authorization.k8s.io/v1",
        "roles",
        "Role",
        true,
        &[],
        &[],
    ),
    b(
        "rbac.authorization.k8s.io/v1",
        "clusterroles",
        "ClusterRole",
        false,
        &[],
        &[],
    ),
    b(
        "rbac.authorization.k8s.io/v1",
        "rolebindings",
        "RoleBinding",
        true,
        &[],
        &[],
    ),
    b(
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
        &[],
    ),
    b(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        &["status"],
    ),
    b(
        "apps/v1",
        "deployments",
        "Deployment",
        true,
        &["deploy"],
        &["status", "scale"],
    ),
    b(
        "apps/v1",
        "statefulsets",
        "StatefulSet",
        true,
        &["sts"],
        &["status", "scale"],
    ),
    b(
        "apps/v1",
        "daemonsets",
        "DaemonSet",
        true,
        &["ds"],
        &["status"],
    ),
    b(
        "apps/v1",
        "replicasets",
        "ReplicaSet",
        true,
        &["rs"],
        &["status", "scale"],
    ),
    b("batch/v1", "jobs", "Job", true, &[], &["status"]),
    b(
        "policy/v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        &["status"],
    ),
    b(
        "networking.k8s.io/v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        &["netpol"],
        &[],
    ),
    b(
        "networking.k8s.io/v1",
        "ingresses",
        "Ingress",
        true,
        &["ing"],
        &["status"],
    ),
    b(
        "admissionregistration.k8s.io/v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
        &[],
        &[],
    ),
    b(
        "admissionregistration.k8s.io/v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        false,
        &[],
        &[],
    ),
    b(
        "authentication.k8s.io/v1",
        "tokenreviews",
        "TokenReview",
        false,
        &[],
        &[],
    ),
    b(
        "authentication.k8s.io/v1",
        "selfsubjectreviews",
        "SelfSubjectReview",
        false,
        &[],
        &[],
    ),
    b(
        "authorization.k8s.io/v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
        &[],
        &[],
    ),
    b(
        "authorization.k8s.io/v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
        &[],
        &[],
    ),
];

/// Registry pre-populated with all built-in resources.
pub fn registry() -> Registry {
    let mut r = Registry::default();
    for x in BUILTINS {
        let (group, version) = match x.gv.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), x.gv.to_string()),
        };
        let mut versions = BTreeMap::new();
        versions.insert(
            version.clone(),
            VersionInfo {
                schema: None,
                columns: columns_for(x.plural),
            },
        );
        let status_sub = x.subs.contains(&"status");
        let storage = if x.gv == "events.k8s.io/v1" {
            (String::new(), "events".to_string())
        } else {
            (group.clone(), x.plural.to_string())
        };
        r.insert(ResourceDef {
            group,
            versions,
            preferred_version: version.clone(),
            storage_version: version,
            plural: x.plural.to_string(),
            singular: x.kind.to_lowercase(),
            kind: x.kind.to_string(),
            namespaced: x.namespaced,
            short_names: x.short.iter().map(|s| s.to_string()).collect(),
            categories: if [
                "deployments",
                "services",
                "pods",
                "statefulsets",
                "daemonsets",
                "replicasets",
                "jobs",
            ]
            .contains(&x.plural)
            {
                vec!["all".into()]
            } else {
                vec![]
            },
            subresources: x.subs.iter().map(|s| s.to_string()).collect(),
            status_subresource: status_sub,
            custom: false,
            generation: status_sub
                || matches!(x.plural, "networkpolicies" | "poddisruptionbudgets"),
            create_on_update: matches!(x.plural, "leases" | "events" | "endpoints"),
            unconditional_update: true,
            storage,
            return_deleted_object: false,
        });
    }
    r
}

fn col(name: &str, type_: &str, path: &str, priority: i64) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        format: String::new(),
        description: String::new(),
        priority,
        json_path: path.into(),
    }
}

fn columns_for(plural: &str) -> Vec<PrinterColumn> {
    match plural {
        "namespaces" => vec![col("Status", "string", ".status.phase", 0)],
        "secrets" => vec![col("Type", "string", ".type", 0)],
        "leases" => vec![col("Holder", "string", ".spec.holderIdentity", 0)],
        "certificatesigningrequests" => vec![
            col("SignerName", "string", ".spec.signerName", 0),
            col("Requestor", "string", ".spec.username", 0),
            col("Condition", "string", ".status.conditions[*].type", 0),
        ],
        "events" => vec![
            col("Type", "string", ".type", 0),
            col("Reason", "string", ".reason", 0),
            col("Message", "string", ".message", 0),
        ],
        _ => vec![],
    }
}

/// Known list-map keys for built-in kinds (used by strategic merge patch and server-side apply).
pub fn builtin_list_keys(field: &str, parent: &str) -> Option<Vec<String>> {
    let k = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    match field {
        "conditions" => k(&["type"]),
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "volumeMounts"
        | "imagePullSecrets" => k(&["name"]),
        "ports" if parent == "spec" => k(&["port", "protocol"]),
        "ports" => k(&["containerPort", "protocol"]),
        "ownerReferences" => k(&["uid"]),
        _ => None,
    }
}

/// kube-apiserver's key rule for Secret and ConfigMap data.
const KEY_RULE: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

/// Secret validation: data keys, and the keys each well-known type requires.
fn secret_causes(obj: &Value) -> Vec<Cause> {
    let mut causes = vec![];
    let data = obj.get("data").and_then(Value::as_object);
    for k in data.into_iter().flatten().map(|(k, _)| k) {
        let ok = !k.is_empty()
            && k.len() <= 253
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
            && k != "."
            && k != ".."
            && !k.starts_with("..");
        if !ok {
            causes.push(Cause::invalid(&format!("data[{k}]"), &json!(k), KEY_RULE));
        }
    }
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let required: &[&str] = match obj.get("type").and_then(Value::as_str) {
        Some("kubernetes.io/tls") => &["tls.crt", "tls.key"],
        Some("kubernetes.io/ssh-auth") => &["ssh-privatekey"],
        Some("kubernetes.io/dockerconfigjson") => &[".dockerconfigjson"],
        Some("kubernetes.io/dockercfg") => &[".dockercfg"],
        _ => &[],
    };
    for k in required.iter().filter(|k| !has(k)) {
        causes.push(Cause::required(&format!("data[{k}]")));
    }
    causes
}

/// events.k8s.io/v1 Event validation (what kube-apiserver 1.20 checks).
fn event_causes(obj: &Value, create: bool) -> Vec<Cause> {
    let mut causes = vec![];
    let str_of = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or_default();
    if create && str_of("eventTime").is_empty() {
        causes.push(Cause::required("eventTime"));
    }
    let t = str_of("type");
    if t != "Normal" && t != "Warning" {
        causes.push(Cause::invalid(
            "type",
            &json!(""),
            &format!("has invalid value: {t}"),
        ));
    }
    // Stored as a core Event: reportingController is kept as reportingComponent.
    for (k, stored) in [
        ("reportingController", "reportingComponent"),
        ("reportingInstance", "reportingInstance"),
        ("action", "action"),
        ("reason", "reason"),
    ] {
        if str_of(stored).is_empty() {
            causes.push(Cause::required(k));
        }
    }
    causes
}

/// Role/ClusterRole rules: verbs always, API groups for resource rules.
fn rule_causes(obj: &Value) -> Vec<Cause> {
    let mut causes = vec![];
    let rules = obj.get("rules").and_then(Value::as_array);
    for (i, r) in rules.into_iter().flatten().enumerate() {
        let empty = |k: &str| r.get(k).and_then(Value::as_array).is_none_or(Vec::is_empty);
        if empty("verbs") {
            causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: verbs must contain at least one value".into(),
                field: format!("rules[{i}].verbs"),
            });
        }
        if empty("nonResourceURLs") && empty("apiGroups") {
            causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: resource rules must supply at least one api group".into(),
                field: format!("rules[{i}].apiGroups"),
            });
        }
    }
    causes
}

/// The usages kube-apiserver accepts in a CertificateSigningRequest.
const CSR_USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// CSR spec validation on create: a PEM CERTIFICATE REQUEST, known usages.
fn csr_spec_causes(obj: &Value) -> Vec<Cause> {
    use base64::Engine;
    let mut causes = vec![];
    if let Some(req) = obj.pointer("/spec/request").and_then(Value::as_str) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(req)
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let is_csr = text.contains("-----BEGIN CERTIFICATE REQUEST-----")
            && text.contains("-----END CERTIFICATE REQUEST-----");
        if !is_csr {
            let shown: Vec<String> = bytes.iter().map(|b| format!("0x{b:x}")).collect();
            causes.push(Cause {
                reason: "FieldValueInvalid".into(),
                message: format!(
                    "Invalid value: []byte{{{}}}: PEM block type must be CERTIFICATE REQUEST",
                    shown.join(", ")
                ),
                field: "spec.request".into(),
            });
        }
    }
    let usages = obj.pointer("/spec/usages").and_then(Value::as_array);
    for (i, u) in usages.into_iter().flatten().enumerate() {
        if !u.as_str().is_some_and(|u| CSR_USAGES.contains(&u)) {
            let allowed: Vec<Value> = CSR_USAGES.iter().map(|u| json!(u)).collect();
            causes.push(Cause::not_supported(
                &format!("spec.usages[{i}]"),
                u,
                &allowed,
            ));
        }
    }
    causes
}

/// Defaulting and validation applied to built-in kinds on create/update (`subresource` is that
/// of the update, `""` for the object itself).
pub fn prepare(
    def: &ResourceDef,
    obj: &mut Value,
    old: Option<&Value>,
    subresource: &str,
    user: &crate::auth::UserInfo,
) -> ApiResult<()> {
    if def.custom {
        return Ok(());
    }
    let name = crate::util::meta_str(obj, "name")
        .unwrap_or_default()
        .to_string();
    let invalid = |causes: Vec<Cause>| ApiError::invalid(&def.group, &def.kind, &name, causes);
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "secrets") => {
            if obj.get("type").is_none_or(Value::is_null) {
                obj["type"] = json!("Opaque");
            }
            if let Some(Value::Object(sd)) =
                obj.as_object_mut().and_then(|o| o.remove("stringData"))
            {
                use base64::Engine;
                if !obj.get("data").is_some_and(Value::is_object) {
                    obj["data"] = json!({});
                }
                for (k, v) in sd {
                    let s = crate::util::scalar_string(&v);
                    obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(s));
                }
            }
            if let Some(Value::Object(data)) = obj.get("data") {
                use base64::Engine;
                for (k, v) in data {
                    let ok = v.as_str().is_some_and(|s| {
                        base64::engine::general_purpose::STANDARD.decode(s).is_ok()
                    });
                    if !ok {
                        return Err(ApiError::bad_request(format!(
                            "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte 0 (key {k:?})"
                        )));
                    }
                }
            }
            let mut causes = secret_causes(obj);
            if let (Some(old), Some(new)) = (old, obj.get("type")) {
                if old.get("type") != Some(new) {
                    causes.push(Cause::invalid("type", new, "field is immutable"));
                }
            }
            if !causes.is_empty() {
                return Err(invalid(causes));
            }
        }
        ("events.k8s.io", "events") => {
            let causes = event_causes(obj, old.is_none());
            if !causes.is_empty() {
                // kube-apiserver validates the internal (core) Event: no group in the Status.
                return Err(ApiError::invalid("", &def.kind, &name, causes));
            }
        }
        ("rbac.authorization.k8s.io", "roles" | "clusterroles") => {
            let causes = rule_causes(obj);
            if !causes.is_empty() {
                return Err(invalid(causes));
            }
        }
        ("", "namespaces") => {
            if old.is_none() {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
                obj["status"] = json!({"phase": "Active"});
            }
            crate::util::meta_mut(obj)
                .entry("labels")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|l| l.insert("kubernetes.io/metadata.name".into(), json!(name)));
        }
        ("certificates.k8s.io", "clustertrustbundles") => {
            let causes = ctb_causes(obj, &name, old);
            if !causes.is_empty() {
                return Err(invalid(causes));
            }
        }
        ("certificates.k8s.io", "certificatesigningrequests") => {
            if old.is_none() {
                let mut causes = vec![];
                if obj
                    .pointer("/spec/request")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    causes.push(Cause::required("spec.request"));
                }
                if obj
                    .pointer("/spec/signerName")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    causes.push(Cause::required("spec.signerName"));
                }
                causes.extend(csr_spec_causes(obj));
                if !causes.is_empty() {
                    return Err(invalid(causes));
                }
                if obj.pointer("/spec/usages").is_none() {
                    obj["spec"]["usages"] = json!(["digital signature", "key encipherment"]);
                }
                // Requester info comes from the authenticated user, never from the body (as
                // kube-apiserver's CSR strategy does): a forged username/groups/uid/extra is
                // overwritten. Users here have no extra attributes; ServiceAccounts have a UID.
                // (spec is an object: spec.request was found above.)
                if let Some(spec) = obj["spec"].as_object_mut() {
                    spec.insert("username".into(), json!(user.name));
                    spec.insert("groups".into(), json!(user.groups));
                    spec.remove("extra");
                    match &user.service_account {
                        Some((_, _, uid)) if !uid.is_empty() => {
                            spec.insert("uid".into(), json!(uid));
                        }
                        _ => {
                            spec.remove("uid");
                        }
                    }
                }
                // kube-apiserver always starts a CSR with an empty status.
                obj["status"] = json!({});
            } else if let Some(old) = old {
                if old.get("spec") != obj.get("spec") {
                    return Err(invalid(vec![Cause::invalid(
                        "spec",
                        &json!("object"),
                        "field is immutable",
                    )]));
                }
                crate::csr_rules::stamp_conditions(obj, old);
                let causes = crate::csr_rules::update_causes(obj, old, subresource);
                if !causes.is_empty() {
                    return Err(invalid(causes));
                }
            }
        }
        ("", "serviceaccounts") | ("", "configmaps") | ("coordination.k8s.io", "leases") => {}
        _ => {}
    }
    Ok(())
}

/// ClusterTrustBundle rules kube-apiserver enforces: a bundle with `spec.signerName` is named
/// `<signerName with / as :>:<suffix>`, the signer name is immutable, `trustBundle` is required.
fn ctb_causes(obj: &Value, name: &str, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = vec![];
    let signer = obj.pointer("/spec/signerName").and_then(Value::as_str);
    if let Some(signer) = signer.filter(|s| !s.is_empty()) {
        let prefix = format!("{}:", signer.replace('/', ":"));
        if !name.starts_with(&prefix) {
            causes.push(Cause::invalid(
                "metadata.name",
                &json!(name),
                &format!(
                    "ClusterTrustBundle for signerName {signer} must be named with prefix {prefix}"
                ),
            ));
        }
    }
    if let Some(old) = old {
        if old.pointer("/spec/signerName").and_then(Value::as_str) != signer {
            causes.push(Cause::invalid(
                "spec.signerName",
                &json!(signer),
                "field is immutable",
            ));
        }
    }
    if obj
        .pointer("/spec/trustBundle")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        causes.push(Cause::required("spec.trustBundle"));
    }
    causes
}
