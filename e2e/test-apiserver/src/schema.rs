//! Structural OpenAPI v3 schemas of CRDs: validation, pruning and defaulting.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::Cause;

/// One `x-kubernetes-validations` rule.
#[derive(Debug, Clone)]
pub struct CelRule {
    /// CEL expression.
    pub rule: String,
    /// Message on failure.
    pub message: Option<String>,
    /// Optional field path appended to the error location.
    pub field_path: Option<String>,
}

/// A parsed structural schema node.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// `type`.
    pub type_: Option<String>,
    /// `properties`.
    pub properties: BTreeMap<String, Schema>,
    /// `items`.
    pub items: Option<Box<Schema>>,
    /// `additionalProperties` schema.
    pub additional: Option<Box<Schema>>,
    /// `additionalProperties: true`.
    pub additional_any: bool,
    /// `required`.
    pub required: Vec<String>,
    /// `enum`.
    pub enum_: Vec<Value>,
    /// `pattern` (compiled).
    pub pattern: Option<(String, Regex)>,
    /// `format`.
    pub format: Option<String>,
    /// `minimum`.
    pub minimum: Option<f64>,
    /// `maximum`.
    pub maximum: Option<f64>,
    /// `exclusiveMinimum`.
    pub exclusive_minimum: bool,
    /// `exclusiveMaximum`.
    pub exclusive_maximum: bool,
    /// `minLength`.
    pub min_length: Option<usize>,
    /// `maxLength`.
    pub max_length: Option<usize>,
    /// `minItems`.
    pub min_items: Option<usize>,
    /// `maxItems`.
    pub max_items: Option<usize>,
    /// `minProperties`.
    pub min_properties: Option<usize>,
    /// `maxProperties`.
    pub max_properties: Option<usize>,
    /// `nullable`.
    pub nullable: bool,
    /// `default`.
    pub default: Option<Value>,
    /// `x-kubernetes-preserve-unknown-fields`.
    pub preserve_unknown: bool,
    /// `x-kubernetes-int-or-string`.
    pub int_or_string: bool,
    /// `x-kubernetes-embedded-resource`.
    pub embedded: bool,
    /// `x-kubernetes-list-type`.
    pub list_type: Option<String>,
    /// `x-kubernetes-list-map-keys`.
    pub list_map_keys: Vec<String>,
    /// `x-kubernetes-validations`.
    pub rules: Vec<CelRule>,
    /// `allOf`.
    pub all_of: Vec<Schema>,
    /// `anyOf`.
    pub any_of: Vec<Schema>,
    /// `oneOf`.
    pub one_of: Vec<Schema>,
    /// `not`.
    pub not: Option<Box<Schema>>,
    /// `uniqueItems`.
    pub unique_items: bool,
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}
fn uint(v: &Value, k: &str) -> Option<usize> {
    v.get(k).and_then(Value::as_u64).map(|n| n as usize)
}
fn flag(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

impl Schema {
    /// Parse a JSONSchemaProps value. Invalid regexes are reported as errors.
    pub fn parse(v: &Value) -> Result<Schema, String> {
        let list = |k: &str| -> Result<Vec<Schema>, String> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(Schema::parse).collect())
                .unwrap_or(Ok(vec![]))
        };
        let mut s = Schema {
            type_: v.get("type").and_then(Value::as_str).map(str::to_string),
            required: crate::util::str_array(v.get("required")),
            enum_: v
                .get("enum")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            format: v.get("format").and_then(Value::as_str).map(str::to_string),
            minimum: num(v, "minimum"),
            maximum: num(v, "maximum"),
            exclusive_minimum: flag(v, "exclusiveMinimum"),
            exclusive_maximum: flag(v, "exclusiveMaximum"),
            min_length: uint(v, "minLength"),
            max_length: uint(v, "maxLength"),
            min_items: uint(v, "minItems"),
            max_items: uint(v, "maxItems"),
            min_properties: uint(v, "minProperties"),
            max_properties: uint(v, "maxProperties"),
            nullable: flag(v, "nullable"),
            default: v.get("default").cloned(),
            preserve_unknown: flag(v, "x-kubernetes-preserve-unknown-fields"),
            int_or_string: flag(v, "x-kubernetes-int-or-string"),
            embedded: flag(v, "x-kubernetes-embedded-resource"),
            list_type: v
                .get("x-kubernetes-list-type")
                .and_then(Value::as_str)
                .map(str::to_string),
            list_map_keys: crate::util::str_array(v.get("x-kubernetes-list-map-keys")),
            unique_items: flag(v, "uniqueItems"),
            all_of: list("allOf")?,
            any_of: list("anyOf")?,
            one_of: list("oneOf")?,
            ..Default::default()
        };
        if let Some(p) = v.get("pattern").and_then(Value::as_str) {
            let re = Regex::new(p).map_err(|e| format!("invalid pattern {p:?}: {e}"))?;
            s.pattern = Some((p.to_string(), re));
        }
        if let Some(Value::Object(props)) = v.get("properties") {
            for (k, pv) in props {
                s.properties.insert(k.clone(), Schema::parse(pv)?);
            }
        }
        if let Some(items) = v.get("items") {
            s.items = Some(Box::new(Schema::parse(items)?));
        }
        match v.get("additionalProperties") {
            Some(Value::Bool(b)) => s.additional_any = *b,
            Some(ap @ Value::Object(_)) => s.additional = Some(Box::new(Schema::parse(ap)?)),
            _ => {}
        }
        if let Some(n) = v.get("not") {
            s.not = Some(Box::new(Schema::parse(n)?));
        }
        if let Some(Value::Array(rules)) = v.get("x-kubernetes-validations") {
            for r in rules {
                if let Some(rule) = r.get("rule").and_then(Value::as_str) {
                    s.rules.push(CelRule {
                        rule: rule.to_string(),
                        message: r.get("message").and_then(Value::as_str).map(str::to_string),
                        field_path: r
                            .get("fieldPath")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    });
                }
            }
        }
        Ok(s)
    }

    /// Schema of a child field of an object node.
    pub fn child(&self, field: &str) -> Option<&Schema> {
        self.properties.get(field).or(self.additional.as_deref())
    }

    /// Schema of list items.
    pub fn item(&self) -> Option<&Schema> {
        self.items.as_deref()
    }

    /// Keys of an `x-kubernetes-list-type: map` list, if this node is one.
    pub fn map_keys(&self) -> Option<Vec<String>> {
        (self.list_type.as_deref() == Some("map") && !self.list_map_keys.is_empty())
            .then(|| self.list_map_keys.clone())
    }

    /// Remove fields not described by the schema (honouring preserve-unknown-fields).
    /// At the root (and in embedded resources) `apiVersion`, `kind` and `metadata` are kept as they are.
    pub fn prune(&self, v: &mut Value, root: bool) {
        match v {
            Value::Object(m) => {
                let special = |k: &str| {
                    (root || self.embedded) && matches!(k, "apiVersion" | "kind" | "metadata")
                };
                if !self.preserve_unknown && self.additional.is_none() && !self.additional_any {
                    m.retain(|k, _| self.properties.contains_key(k) || special(k));
                }
                for (k, child) in m.iter_mut() {
                    if special(k) {
                        continue;
                    }
                    if let Some(s) = self.properties.get(k).or(self.additional.as_deref()) {
                        s.prune(child, false);
                    }
                }
            }
            Value::Array(a) => {
                if let Some(items) = &self.items {
                    for x in a {
                        items.prune(x, false);
                    }
                }
            }
            _ => {}
        }
    }

    /// Apply `default`s for missing properties (and drop nulls of non-nullable defaulted fields).
    pub fn apply_defaults(&self, v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, ps) in &self.properties {
                    if let Some(d) = &ps.default {
                        match m.get(k) {
                            None => {
                                m.insert(k.clone(), d.clone());
                            }
                            Some(Value::Null) if !ps.nullable => {
                                m.insert(k.clone(), d.clone());
                            }
                            _ => {}
                        }
                    }
                }
                for (k, child) in m.iter_mut() {
                    if let Some(s) = self.properties.get(k).or(self.additional.as_deref()) {
                        s.apply_defaults(child);
                    }
                }
            }
            Value::Array(a) => {
                if let Some(items) = &self.items {
                    for x in a {
                        items.apply_defaults(x);
                    }
                }
            }
            _ => {}
        }
    }

    /// Validate a value; `old` is the previous value at the same location (for CEL transition rules).
    pub fn validate(&self, v: &Value, old: Option<&Value>, path: &str, causes: &mut Vec<Cause>) {
        let at = |p: &str| {
            if p.is_empty() {
                "<root>".to_string()
            } else {
                p.to_string()
            }
        };
        if v.is_null() {
            if !self.nullable && self.type_.is_some() {
                causes.push(Cause::type_invalid(
                    &at(path),
                    v,
                    self.type_.as_deref().unwrap_or("object"),
                ));
            }
            return;
        }
        if self.int_or_string {
            if !(v.is_string() || v.is_i64() || v.is_u64()) {
                causes.push(Cause::type_invalid(&at(path), v, "integer,string"));
                return;
            }
        } else if let Some(t) = &self.type_ {
            let ok = match t.as_str() {
                "object" => v.is_object(),
                "array" => v.is_array(),
                "string" => v.is_string(),
                "integer" => {
                    v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0)
                }
                "number" => v.is_number(),
                "boolean" => v.is_boolean(),
                _ => true,
            };
            if !ok {
                causes.push(Cause::type_invalid(&at(path), v, t));
                return;
            }
        }
        if !self.enum_.is_empty() && !self.enum_.contains(v) {
            causes.push(Cause::not_supported(&at(path), v, &self.enum_));
        }
        match v {
            Value::String(s) => self.validate_string(s, v, &at(path), causes),
            Value::Number(n) => {
                let f = n.as_f64().unwrap_or(0.0);
                if let Some(min) = self.minimum {
                    if f < min || (self.exclusive_minimum && f == min) {
                        let op = if self.exclusive_minimum {
                            "greater than"
                        } else {
                            "greater than or equal to"
                        };
                        causes.push(Cause::invalid(
                            &at(path),
                            v,
                            &format!("{} in body should be {op} {}", at(path), fmt_num(min)),
                        ));
                    }
                }
                if let Some(max) = self.maximum {
                    if f > max || (self.exclusive_maximum && f == max) {
                        let op = if self.exclusive_maximum {
                            "less than"
                        } else {
                            "less than or equal to"
                        };
                        causes.push(Cause::invalid(
                            &at(path),
                            v,
                            &format!("{} in body should be {op} {}", at(path), fmt_num(max)),
                        ));
                    }
                }
            }
            Value::Array(a) => {
                if let Some(min) = self.min_items {
                    if a.len() < min {
                        causes.push(Cause::invalid(
                            &at(path),
                            v,
                            &format!("{} in body should have at least {min} items", at(path)),
                        ));
                    }
                }
                if let Some(max) = self.max_items {
                    if a.len() > max {
                        causes.push(Cause {
                            reason: "FieldValueTooMany".into(),
                            message: format!(
                                "Too many: {}: must have at most {max} items",
                                a.len()
                            ),
                            field: at(path),
                        });
                    }
                }
                if let Some(keys) = self.map_keys() {
                    let mut seen = std::collections::HashSet::new();
                    for (i, x) in a.iter().enumerate() {
                        let k: Vec<Value> = keys
                            .iter()
                            .map(|k| x.get(k).cloned().unwrap_or(Value::Null))
                            .collect();
                        if !seen.insert(serde_json::to_string(&k).unwrap_or_default()) {
                            causes.push(Cause {
                                reason: "FieldValueDuplicate".into(),
                                message: format!("Duplicate value: {}", map_key_repr(&keys, x)),
                                field: format!("{}[{i}]", at(path)),
                            });
                        }
                    }
                } else if self.list_type.as_deref() == Some("set") || self.unique_items {
                    for (i, x) in a.iter().enumerate() {
                        if a[..i].contains(x) {
                            causes.push(Cause {
                                reason: "FieldValueDuplicate".into(),
                                message: format!("Duplicate value: {x}"),
                                field: format!("{}[{i}]", at(path)),
                            });
                        }
                    }
                }
                if let Some(items) = &self.items {
                    for (i, x) in a.iter().enumerate() {
                        let old_item = self.correlate_item(old, x, i);
                        items.validate(x, old_item, &format!("{path}[{i}]"), causes);
                    }
                }
            }
            Value::Object(m) => self.validate_object(m, v, old, path, causes),
            _ => {}
        }
        for s in &self.all_of {
            s.validate_constraints_only(v, path, causes);
        }
        if !self.any_of.is_empty() && !self.any_of.iter().any(|s| s.matches(v)) {
            causes.push(Cause::invalid(
                &at(path),
                v,
                &format!(
                    "{} in body must match at least one schema (anyOf)",
                    at(path)
                ),
            ));
        }
        if !self.one_of.is_empty() && self.one_of.iter().filter(|s| s.matches(v)).count() != 1 {
            causes.push(Cause::invalid(
                &at(path),
                v,
                &format!("{} in body must match exactly one schema (oneOf)", at(path)),
            ));
        }
        if let Some(n) = &self.not {
            if n.matches(v) {
                causes.push(Cause::invalid(
                    &at(path),
                    v,
                    &format!("{} in body must not match the schema (not)", at(path)),
                ));
            }
        }
        for r in &self.rules {
            match crate::cel::evaluate(&r.rule, v, old) {
                Ok(true)
                | Err(crate::cel::CelError::Unsupported(_))
                | Err(crate::cel::CelError::NoOldSelf) => {}
                Ok(false) | Err(crate::cel::CelError::Eval(_)) => {
                    let field = match &r.field_path {
                        Some(fp) => format!("{}{}", path, fp),
                        None => at(path),
                    };
                    let msg = r
                        .message
                        .clone()
                        .unwrap_or_else(|| format!("failed rule: {}", r.rule));
                    causes.push(Cause::invalid(&field, &shape(v), &msg));
                }
            }
        }
    }

    fn correlate_item<'a>(&self, old: Option<&'a Value>, x: &Value, i: usize) -> Option<&'a Value> {
        let old = old?.as_array()?;
        match self.map_keys() {
            Some(keys) => old
                .iter()
                .find(|o| keys.iter().all(|k| o.get(k) == x.get(k))),
            None => old.get(i),
        }
    }

    fn validate_string(&self, s: &str, v: &Value, path: &str, causes: &mut Vec<Cause>) {
        let len = s.chars().count();
        if let Some(min) = self.min_length {
            if len < min {
                causes.push(Cause::invalid(
                    path,
                    v,
                    &format!("{path} in body should be at least {min} chars long"),
                ));
            }
        }
        if let Some(max) = self.max_length {
            if len > max {
                causes.push(Cause {
                    reason: "FieldValueTooLong".into(),
                    message: format!("Too long: may not be more than {max} bytes"),
                    field: path.into(),
                });
            }
        }
        if let Some((p, re)) = &self.pattern {
            if !re.is_match(s) {
                causes.push(Cause::invalid(
                    path,
                    v,
                    &format!("{path} in body should match '{p}'"),
                ));
            }
        }
        if let Some(f) = &self.format {
            let ok = match f.as_str() {
                "byte" => {
                    use base64::Engine;
                    base64::engine::general_purpose::STANDARD.decode(s).is_ok()
                }
                "date-time" => s.parse::<jiff::Timestamp>().is_ok(),
                "date" => s.parse::<jiff::civil::Date>().is_ok(),
                _ => true,
            };
            if !ok {
                causes.push(Cause::invalid(
                    path,
                    v,
                    &format!("{path} in body must be of type {f}: {s:?}"),
                ));
            }
        }
    }

    fn validate_object(
        &self,
        m: &Map<String, Value>,
        v: &Value,
        old: Option<&Value>,
        path: &str,
        causes: &mut Vec<Cause>,
    ) {
        let join = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        for r in &self.required {
            if !m.contains_key(r) {
                causes.push(Cause::required(&join(r)));
            }
        }
        if let Some(min) = self.min_properties {
            if m.len() < min {
                causes.push(Cause::invalid(
                    &join(""),
                    v,
                    &format!("{path} in body should have at least {min} properties"),
                ));
            }
        }
        if let Some(max) = self.max_properties {
            if m.len() > max {
                causes.push(Cause::invalid(
                    path,
                    v,
                    &format!("{path} in body should have at most {max} properties"),
                ));
            }
        }
        for (k, child) in m {
            if path.is_empty() && k == "metadata" {
                continue;
            }
            let cp = if self.properties.contains_key(k) || path.is_empty() {
                join(k)
            } else {
                format!("{path}[{k}]")
            };
            let old_child = old.and_then(|o| o.get(k));
            if let Some(s) = self.properties.get(k) {
                s.validate(child, old_child, &cp, causes);
            } else if let Some(s) = &self.additional {
                s.validate(child, old_child, &cp, causes);
            }
        }
    }

    fn validate_constraints_only(&self, v: &Value, path: &str, causes: &mut Vec<Cause>) {
        self.validate(v, None, path, causes);
    }

    fn matches(&self, v: &Value) -> bool {
        let mut c = vec![];
        self.validate(v, None, "x", &mut c);
        c.is_empty()
    }
}

fn fmt_num(f: f64) -> String {
    if f.fract() == 0.0 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

fn shape(v: &Value) -> Value {
    match v {
        Value::Object(_) => Value::String("object".into()),
        Value::Array(_) => Value::String("array".into()),
        other => other.clone(),
    }
}

fn map_key_repr(keys: &[String], x: &Value) -> String {
    let parts: Vec<String> = keys
        .iter()
        .map(|k| format!("{:?}:{}", k, x.get(k).cloned().unwrap_or(Value::Null)))
        .collect();
    format!("map[string]interface {{}}{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::parse(&json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 2, "maxLength": 5, "pattern": "^[a-z]+$"},
                        "mode": {"type": "string", "enum": ["A", "B"], "default": "A"},
                        "count": {"type": "integer", "minimum": 1, "maximum": 3},
                        "ca": {"type": "string", "format": "byte"},
                        "when": {"type": "string", "format": "date-time"},
                        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
                        "opt": {"type": "string", "nullable": true},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "a": {"type": "string"}, "b": {"type": "string"},
                        "conds": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                                   "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}}
                    },
                    "x-kubernetes-validations": [{"rule": "has(self.a) ? !has(self.b) : has(self.b)", "message": "exactly one of a or b"}]
                }
            }
        }))
        .unwrap()
    }

    fn errs(spec: Value) -> Vec<String> {
        let mut c = vec![];
        schema().validate(&json!({"spec": spec}), None, "", &mut c);
        c.iter().map(Cause::display).collect()
    }

    #[test]
    fn valid_object_passes() {
        let e = errs(
            json!({"name": "abc", "count": 2, "ca": "aGVsbG8=", "when": "2024-01-01T00:00:00Z", "tags": ["x"], "opt": null, "a": "1"}),
        );
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn constraint_violations() {
        let e = errs(
            json!({"count": 9, "mode": "C", "ca": "!!", "when": "yesterday", "tags": [], "a": "1"}),
        );
        assert!(
            e.contains(&"spec.name: Required value".to_string()),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.starts_with("spec.count: Invalid value: 9: spec.count in body should be less than or equal to 3")), "{e:?}");
        assert!(e.iter().any(|m| m == "spec.mode: Unsupported value: \"C\": supported values: \"A\", \"B\""), "{e:?}");
        assert!(
            e.iter()
                .any(|m| m.contains("spec.ca in body must be of type byte")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.contains("must be of type date-time")),
            "{e:?}"
        );
        assert!(
            e.iter().any(|m| m.contains("should have at least 1 items")),
            "{e:?}"
        );
        let e = errs(json!({"name": "ABCDEFG", "b": "x", "a": "y"}));
        assert!(
            e.iter().any(|m| m.contains("should match '^[a-z]+$'")),
            "{e:?}"
        );
        assert!(e.iter().any(|m| m.contains("Too long")), "{e:?}");
        assert!(
            e.iter().any(|m| m.ends_with("exactly one of a or b")),
            "{e:?}"
        );
        let e = errs(json!({"name": "ab", "count": "x", "b": "1"}));
        assert!(
            e.iter().any(|m| m.contains("must be of type integer")),
            "{e:?}"
        );
    }

    #[test]
    fn duplicate_map_keys_rejected() {
        let e = errs(json!({"name": "ab", "a": "1", "conds": [{"type": "R"}, {"type": "R"}]}));
        assert!(
            e.iter()
                .any(|m| m.starts_with("spec.conds[1]: Duplicate value")),
            "{e:?}"
        );
    }

    #[test]
    fn prune_and_default() {
        let s = schema();
        let mut v = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}, "junk": 1,
                           "spec": {"name": "ab", "extra": true, "free": {"anything": {"x": 1}}, "labels": {"k": "v"}}});
        s.prune(&mut v, true);
        s.apply_defaults(&mut v);
        assert_eq!(v["junk"], Value::Null);
        assert!(v.get("junk").is_none());
        assert!(v["spec"].get("extra").is_none());
        assert_eq!(v["spec"]["free"]["anything"]["x"], 1);
        assert_eq!(v["spec"]["labels"]["k"], "v");
        assert_eq!(v["spec"]["mode"], "A");
        assert_eq!(v["metadata"]["name"], "n");
        assert_eq!(
            s.child("spec").unwrap().child("conds").unwrap().map_keys(),
            Some(vec!["type".to_string()])
        );
    }
}
