//! Discovery documents (`/version`, `/api`, `/apis`, per-group-version resource lists, aggregated
//! discovery v2) and the minimal OpenAPI endpoints.

use serde_json::{json, Value};

use crate::resources::{Registry, ResourceDef};

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0+test-apiserver", "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc", "platform": "linux/amd64"
    })
}

/// `/api`.
pub fn api_versions(addr: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": addr}]})
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": gv(&versions[0]),
    })
}

/// `/apis`.
pub fn group_list(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .iter()
        .map(|(n, vs)| group_json(n, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/GROUP`.
pub fn group(reg: &Registry, name: &str) -> Option<Value> {
    let (n, vs) = reg.groups().into_iter().find(|(g, _)| g == name)?;
    let mut g = group_json(&n, &vs);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

fn sub_verbs(sub: &str) -> Vec<&'static str> {
    match sub {
        "token" => vec!["create"],
        "finalize" => vec!["update"],
        _ => vec!["get", "patch", "update"],
    }
}

fn sub_kind(def: &ResourceDef, sub: &str) -> (String, String) {
    match sub {
        "token" => ("authentication.k8s.io".into(), "TokenRequest".into()),
        "scale" => ("autoscaling".into(), "Scale".into()),
        _ => (def.group.clone(), def.kind.clone()),
    }
}

/// `/api/v1` or `/apis/GROUP/VERSION`.
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let defs = reg.resources_in(group, version);
    if defs.is_empty() {
        return None;
    }
    let mut resources = vec![];
    for d in defs {
        let mut r = json!({
            "name": d.plural, "singularName": d.singular, "namespaced": d.namespaced, "kind": d.kind, "verbs": d.verbs(),
        });
        if !d.short_names.is_empty() {
            r["shortNames"] = json!(d.short_names);
        }
        if !d.categories.is_empty() {
            r["categories"] = json!(d.categories);
        }
        resources.push(r);
        for s in &d.subresources {
            let (g, k) = sub_kind(&d, s);
            let mut r = json!({"name": format!("{}/{}", d.plural, s), "singularName": "", "namespaced": d.namespaced, "kind": k, "verbs": sub_verbs(s)});
            if g != d.group {
                r["group"] = json!(g);
                r["version"] = json!("v1");
            }
            resources.push(r);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// Aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`), for `/api` (core) or `/apis`.
pub fn aggregated(reg: &Registry, core: bool, api_version: &str) -> Value {
    let groups: Vec<(String, Vec<String>)> = if core {
        vec![(String::new(), vec!["v1".to_string()])]
    } else {
        reg.groups()
    };
    let items: Vec<Value> = groups
        .iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = reg
                        .resources_in(g, v)
                        .iter()
                        .map(|d| {
                            let subs: Vec<Value> = d
                                .subresources
                                .iter()
                                .map(|s| {
                                    let (sg, sk) = sub_kind(d, s);
                                    let sv = if sg == d.group { v.clone() } else { "v1".into() };
                                    json!({"subresource": s, "responseKind": {"group": sg, "version": sv, "kind": sk}, "verbs": sub_verbs(s)})
                                })
                                .collect();
                            let mut r = json!({
                                "resource": d.plural,
                                "responseKind": {"group": d.group, "version": v, "kind": d.kind},
                                "scope": if d.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": d.singular,
                                "verbs": d.verbs(),
                            });
                            if !d.short_names.is_empty() {
                                r["shortNames"] = json!(d.short_names);
                            }
                            if !d.categories.is_empty() {
                                r["categories"] = json!(d.categories);
                            }
                            if !subs.is_empty() {
                                r["subresources"] = json!(subs);
                            }
                            r
                        })
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": api_version, "metadata": {}, "items": items})
}

/// Minimal Swagger 2.0 document for `/openapi/v2` (JSON form). It defines no schemas, so kubectl's
/// client-side validation finds nothing to check and passes.
pub fn openapi_v2() -> Value {
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": {}, "definitions": {}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_list_has_subresources() {
        let reg = crate::builtins::registry();
        let l = resource_list(&reg, "", "v1").unwrap();
        let names: Vec<&str> = l["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"secrets") && names.contains(&"serviceaccounts/token"));
        let csr = resource_list(&reg, "certificates.k8s.io", "v1").unwrap();
        assert!(csr["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "certificatesigningrequests/status"));
        let groups = group_list(&reg);
        assert!(groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "coordination.k8s.io"));
        let agg = aggregated(&reg, false, "apidiscovery.k8s.io/v2");
        assert!(agg["items"].as_array().unwrap().len() > 5);
        assert!(resource_list(&reg, "nope", "v1").is_none());
    }
}
