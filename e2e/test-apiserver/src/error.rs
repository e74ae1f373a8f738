//! Kubernetes `Status` errors returned by the API server.

use serde_json::{json, Value};

/// One entry of `Status.details.causes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// Machine-readable reason, e.g. `FieldValueRequired`.
    pub reason: String,
    /// Human-readable message, e.g. `Required value`.
    pub message: String,
    /// JSON path of the offending field, e.g. `spec.request`.
    pub field: String,
}

impl Cause {
    /// A `FieldValueRequired` cause.
    pub fn required(field: &str) -> Cause {
        Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value".into(),
            field: field.into(),
        }
    }
    /// A `FieldValueInvalid` cause whose message mimics kube-apiserver's `Invalid value: V: detail`.
    pub fn invalid(field: &str, value: &Value, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {}: {}", render_value(value), detail),
            field: field.into(),
        }
    }
    /// A `FieldValueNotSupported` cause (enum violations).
    pub fn not_supported(field: &str, value: &Value, allowed: &[Value]) -> Cause {
        let list: Vec<String> = allowed.iter().map(render_value).collect();
        Cause {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {}: supported values: {}",
                render_value(value),
                list.join(", ")
            ),
            field: field.into(),
        }
    }
    /// A `FieldValueTypeInvalid` cause.
    pub fn type_invalid(field: &str, value: &Value, expected: &str) -> Cause {
        Cause {
            reason: "FieldValueTypeInvalid".into(),
            message: format!(
                "Invalid value: \"{}\": {}",
                type_name(value),
                format_args!(
                    "{field} in body must be of type {expected}: \"{}\"",
                    type_name(value)
                )
            ),
            field: field.into(),
        }
    }
    /// A `FieldValueForbidden` cause.
    pub fn forbidden(field: &str, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueForbidden".into(),
            message: format!("Forbidden: {detail}"),
            field: field.into(),
        }
    }
    /// Message as shown inside an Invalid status message: `field: message`.
    pub fn display(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

/// An error that maps onto a Kubernetes `Status` response.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason`, e.g. `NotFound`.
    pub reason: String,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, if any.
    pub details: Option<Value>,
}

/// Result alias used throughout the crate.
pub type ApiResult<T> = Result<T, ApiError>;

fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

fn details(group: &str, kind: &str, name: &str) -> Value {
    let mut d = json!({ "kind": kind });
    if !name.is_empty() {
        d["name"] = json!(name);
    }
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    d
}

impl ApiError {
    /// Build an error with no details.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
        }
    }
    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }
    /// 401 Unauthorized.
    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }
    /// 404 NotFound for `resource.group "name"`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError {
            code: 404,
            reason: "NotFound".into(),
            message: format!("{} \"{}\" not found", qualified(group, resource), name),
            details: Some(details(group, resource, name)),
        }
    }
    /// 404 for a path that matches no route.
    pub fn no_route() -> ApiError {
        ApiError {
            details: Some(json!({})),
            ..ApiError::new(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    }
    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "AlreadyExists".into(),
            message: format!("{} \"{}\" already exists", qualified(group, resource), name),
            details: Some(details(group, resource, name)),
        }
    }
    /// 409 Conflict with kube-apiserver's optimistic-concurrency message.
    pub fn conflict(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError::conflict_msg(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }
    /// 409 Conflict with a custom detail.
    pub fn conflict_msg(group: &str, resource: &str, name: &str, detail: &str) -> ApiError {
        ApiError {
            code: 409,
            reason: "Conflict".into(),
            message: format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                qualified(group, resource),
                name,
                detail
            ),
            details: Some(details(group, resource, name)),
        }
    }
    /// 409 Conflict of a server-side apply, worded and detailed as kube-apiserver does: the
    /// conflicting fields as causes, no name or kind. `conflicts` are (manager, field).
    pub fn apply_conflict(conflicts: &[(&str, &str)], causes: &[Cause]) -> ApiError {
        let detail = if let [(manager, field)] = conflicts {
            format!("conflict with \"{manager}\": {field}")
        } else {
            let mut managers: Vec<&str> = conflicts.iter().map(|c| c.0).collect();
            managers.sort();
            managers.dedup();
            let mut lines = vec![];
            for m in managers {
                lines.push(format!("conflicts with \"{m}\":"));
                lines.extend(
                    conflicts
                        .iter()
                        .filter(|c| c.0 == m)
                        .map(|c| format!("- {}", c.1)),
                );
            }
            lines.join("\n")
        };
        let n = conflicts.len();
        ApiError {
            code: 409,
            reason: "Conflict".into(),
            message: format!(
                "Apply failed with {n} conflict{}: {detail}",
                if n == 1 { "" } else { "s" }
            ),
            details: Some(
                json!({"causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>()}),
            ),
        }
    }
    /// 422 Invalid for `Kind.group "name"`.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> ApiError {
        let list: Vec<String> = causes.iter().map(Cause::display).collect();
        let joined = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        let mut d = details(group, kind, name);
        d["causes"] = Value::Array(
            causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect(),
        );
        ApiError {
            code: 422,
            reason: "Invalid".into(),
            message: format!(
                "{} \"{}\" is invalid: {}",
                qualified(group, kind),
                name,
                joined
            ),
            details: Some(d),
        }
    }
    /// 403 Forbidden with a full message body (as produced by the authorizer).
    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> ApiError {
        let subject = if name.is_empty() {
            qualified(group, resource)
        } else {
            format!("{} \"{}\"", qualified(group, resource), name)
        };
        ApiError {
            code: 403,
            reason: "Forbidden".into(),
            message: format!("{subject} is forbidden: {why}"),
            details: Some(details(group, resource, name)),
        }
    }
    /// 410 Expired (compacted resourceVersion).
    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }
    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }
    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(ct: &str) -> ApiError {
        ApiError::new(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"))
    }
    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "InternalError", message)
    }

    /// The `Status` object for this error.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}
