//! The README's API reference documents exactly the spec the CRD accepts: every documented
//! field exists in the generated schema (so a manifest written from the README is not pruned
//! or refused), and every field of the schema is documented.

use std::collections::BTreeSet;

use kube::CustomResourceExt;
use serde_json::Value;

use crate::api::PKIIssuer;

/// Expands `a.{b, c}` into `a.b`, `a.c`.
fn expand(path: &str) -> Vec<String> {
    match (path.find('{'), path.find('}')) {
        (Some(open), Some(close)) if open < close => path[open + 1..close]
            .split(',')
            .flat_map(|alt| {
                expand(&format!(
                    "{}{}{}",
                    &path[..open],
                    alt.trim(),
                    &path[close + 1..]
                ))
            })
            .collect(),
        _ => vec![path.to_string()],
    }
}

/// Field paths in the first column of the README's API reference table.
fn documented() -> BTreeSet<String> {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("## API reference")
        .expect("README has an API reference");
    let section = &readme[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let mut out = BTreeSet::new();
    for line in section[..end].lines() {
        let Some(row) = line.strip_prefix("| `") else {
            continue;
        };
        let first = row.split(" |").next().unwrap_or_default();
        for cell in first.split('`').step_by(2) {
            let cell = cell.trim().trim_start_matches("/ ").trim();
            if cell.is_empty() || cell.starts_with('(') {
                continue;
            }
            out.extend(expand(cell));
        }
    }
    out
}

/// Every property path below `spec` (`policy.dnsNames`, `cfssl.authKey.name`, ...).
fn schema_paths(schema: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let schema = schema.get("items").unwrap_or(schema);
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, sub) in props {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        out.insert(path.clone());
        schema_paths(sub, &path, out);
    }
}

#[test]
fn readme_documents_exactly_the_crd_spec() {
    let crd = serde_json::to_value(PKIIssuer::crd()).unwrap();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let mut schema = BTreeSet::new();
    schema_paths(spec, "", &mut schema);
    let docs = documented();
    assert!(docs.len() > 10, "README table not found: {docs:?}");
    let unknown: Vec<&String> = docs.iter().filter(|d| !schema.contains(*d)).collect();
    assert!(
        unknown.is_empty(),
        "the README documents fields the CRD does not accept: {unknown:?}"
    );
    // Every field down to `kind.field` is documented (deeper ones are described in the row).
    let undocumented: Vec<&String> = schema
        .iter()
        .filter(|p| p.matches('.').count() <= 1)
        .filter(|p| {
            !docs
                .iter()
                .any(|d| d == *p || d.starts_with(&format!("{p}.")))
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "the CRD accepts fields the README does not document: {undocumented:?}"
    );
}

#[test]
fn expansion() {
    assert_eq!(expand("a.{b, c}"), vec!["a.b", "a.c"]);
    assert_eq!(expand("x"), vec!["x"]);
}
