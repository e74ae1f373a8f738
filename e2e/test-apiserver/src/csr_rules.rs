//! kube-apiserver's rules for updates of a CertificateSigningRequest's `status` and `approval`
//! subresources: who may add or remove which condition, and what `status.certificate` may hold.

use serde_json::{json, Value};

use crate::error::Cause;

/// Conditions that, once present, can never be removed.
const STICKY: &[&str] = &["Approved", "Denied", "Failed"];

fn conditions(obj: &Value) -> Vec<Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn type_of(c: &Value) -> &str {
    c.get("type").and_then(Value::as_str).unwrap_or_default()
}

/// Fill `lastUpdateTime` and `lastTransitionTime` of conditions that lack them, as the server does.
pub fn stamp_conditions(obj: &mut Value, old: &Value) {
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let before = conditions(old);
    let Some(list) = obj
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in list.iter_mut().filter(|c| c.is_object()) {
        if c.get("lastUpdateTime").is_none_or(Value::is_null) {
            c["lastUpdateTime"] = json!(now);
        }
        if c.get("lastTransitionTime").is_none_or(Value::is_null) {
            let prior = before
                .iter()
                .find(|o| type_of(o) == type_of(c) && o.get("status") == c.get("status"))
                .and_then(|o| o.get("lastTransitionTime"))
                .filter(|t| !t.is_null());
            c["lastTransitionTime"] = prior.cloned().unwrap_or_else(|| json!(now));
        }
    }
}

/// Validation of an update of `subresource` (`status`, `approval` or `""`).
pub fn update_causes(obj: &Value, old: &Value, subresource: &str) -> Vec<Cause> {
    let mut causes = vec![];
    let new = conditions(obj);
    let before = conditions(old);
    // Condition types are unique; Approved and Denied exclude each other.
    let mut seen: Vec<&str> = vec![];
    for (i, c) in new.iter().enumerate() {
        let t = type_of(c);
        let field = format!("status.conditions[{i}].type");
        if t.is_empty() {
            causes.push(Cause::required(&field));
            continue;
        }
        if seen.contains(&t) {
            causes.push(Cause {
                reason: "FieldValueDuplicate".into(),
                message: format!("Duplicate value: {:?}", t),
                field: field.clone(),
            });
        }
        let other = match t {
            "Approved" => Some("Denied"),
            "Denied" => Some("Approved"),
            _ => None,
        };
        if other.is_some_and(|o| seen.contains(&o)) {
            // Reported at the list, as kube-apiserver 1.36 does (1.20 named the item's type).
            causes.push(Cause::invalid(
                "status.conditions",
                &json!(t),
                "Approved and Denied conditions are mutually exclusive",
            ));
        }
        seen.push(t);
    }
    let count = |list: &[Value], t: &str| list.iter().filter(|c| type_of(c) == t).count();
    if subresource == "status" {
        for t in ["Approved", "Denied"] {
            if count(&new, t) > count(&before, t) {
                causes.push(Cause::forbidden(
                    "status.conditions",
                    &format!("updates may not add a condition of type {t:?}"),
                ));
            }
        }
    }
    for t in STICKY {
        if count(&new, t) < count(&before, t) {
            causes.push(Cause::forbidden(
                "status.conditions",
                &format!("updates may not remove a condition of type {t:?}"),
            ));
        }
    }
    if subresource == "status" {
        let cert = |v: &Value| {
            v.pointer("/status/certificate")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (now, was) = (cert(obj), cert(old));
        if !now.is_empty() && !has_certificate_block(&now) {
            causes.push(Cause::invalid(
                "status.certificate",
                &json!("<certificate data>"),
                "must contain at least one CERTIFICATE PEM block",
            ));
        }
        if !was.is_empty() && now != was {
            causes.push(Cause::forbidden(
                "status.certificate",
                "updates may not modify existing certificate content",
            ));
        }
    }
    causes
}

/// Whether base64 `b64` decodes to text with a PEM `CERTIFICATE` block.
fn has_certificate_block(b64: &str) -> bool {
    use base64::Engine;
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64) else {
        return false;
    };
    let text = String::from_utf8_lossy(&bytes);
    text.contains("-----BEGIN CERTIFICATE-----") && text.contains("-----END CERTIFICATE-----")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(conds: &[&str], cert: &str) -> Value {
        let cs: Vec<Value> = conds
            .iter()
            .map(|t| json!({"type": t, "status": "True"}))
            .collect();
        json!({"status": {"conditions": cs, "certificate": cert}})
    }

    fn fields(c: &[Cause]) -> Vec<String> {
        c.iter()
            .map(|c| format!("{} {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn approval_rules() {
        let none = csr(&[], "");
        assert!(update_causes(&csr(&["Approved"], ""), &none, "approval").is_empty());
        let both = update_causes(&csr(&["Approved", "Denied"], ""), &none, "approval");
        assert!(
            fields(&both)[0].contains("mutually exclusive"),
            "{:?}",
            fields(&both)
        );
        let via_status = update_causes(&csr(&["Approved"], ""), &none, "status");
        assert!(fields(&via_status)[0].contains("may not add a condition of type \"Approved\""));
        let removed = update_causes(&none, &csr(&["Approved", "Failed"], ""), "approval");
        assert_eq!(removed.len(), 2, "{:?}", fields(&removed));
        let dup = update_causes(&csr(&["Failed", "Failed"], ""), &none, "status");
        assert!(fields(&dup)[0].contains("Duplicate"));
    }

    #[test]
    fn certificate_rules() {
        use base64::Engine;
        let pem = base64::engine::general_purpose::STANDARD
            .encode("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n");
        let approved = csr(&["Approved"], "");
        assert!(update_causes(&csr(&["Approved"], &pem), &approved, "status").is_empty());
        let garbage = base64::engine::general_purpose::STANDARD.encode("garbage");
        let bad = update_causes(&csr(&["Approved"], &garbage), &approved, "status");
        assert!(fields(&bad)[0].contains("at least one CERTIFICATE PEM block"));
        let signed = csr(&["Approved"], &pem);
        let changed = update_causes(
            &csr(&["Approved"], &format!("{pem}{pem}")),
            &signed,
            "status",
        );
        assert!(fields(&changed)
            .iter()
            .any(|f| f.contains("may not modify existing certificate")));
    }

    #[test]
    fn stamps_missing_times_and_keeps_transitions() {
        let old = json!({"status": {"conditions": [{"type": "Approved", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]}});
        let mut new = json!({"status": {"conditions": [{"type": "Approved", "status": "True"}, {"type": "Failed", "status": "True"}]}});
        stamp_conditions(&mut new, &old);
        assert_eq!(
            new["status"]["conditions"][0]["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        assert!(new["status"]["conditions"][1]["lastTransitionTime"].is_string());
        assert!(new["status"]["conditions"][0]["lastUpdateTime"].is_string());
    }
}
