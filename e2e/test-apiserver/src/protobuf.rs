//! Minimal decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`).
//!
//! kubectl sends built-in objects as protobuf. The server answers in JSON (clients accept that), and
//! decodes protobuf bodies for the kinds listed in [`decode`]; other kinds get 415.

use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};

#[derive(Clone, Copy)]
enum F {
    Str,
    Bytes,
    Time,
    Int,
    Bool,
    StrList,
    StrMap,
    BytesMap,
    Msg(&'static [(u64, &'static str, F)]),
    MsgList(&'static [(u64, &'static str, F)]),
}

const OWNER_REF: &[(u64, &str, F)] = &[
    (5, "apiVersion", F::Str),
    (1, "kind", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (6, "controller", F::Bool),
    (7, "blockOwnerDeletion", F::Bool),
];
const META: &[(u64, &str, F)] = &[
    (1, "name", F::Str),
    (2, "generateName", F::Str),
    (3, "namespace", F::Str),
    (5, "uid", F::Str),
    (6, "resourceVersion", F::Str),
    (7, "generation", F::Int),
    (11, "labels", F::StrMap),
    (12, "annotations", F::StrMap),
    (13, "ownerReferences", F::MsgList(OWNER_REF)),
    (14, "finalizers", F::StrList),
];
const OBJ_REF: &[(u64, &str, F)] = &[
    (1, "kind", F::Str),
    (2, "namespace", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
    (5, "apiVersion", F::Str),
];
const SERVICE_ACCOUNT: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(META)),
    (2, "secrets", F::MsgList(OBJ_REF)),
    (4, "automountServiceAccountToken", F::Bool),
];
const BOUND_REF: &[(u64, &str, F)] = &[
    (1, "kind", F::Str),
    (2, "apiVersion", F::Str),
    (3, "name", F::Str),
    (4, "uid", F::Str),
];
const TOKEN_SPEC: &[(u64, &str, F)] = &[
    (1, "audiences", F::StrList),
    (4, "expirationSeconds", F::Int),
    (3, "boundObjectRef", F::Msg(BOUND_REF)),
];
const TOKEN_REQUEST: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(META)),
    (2, "spec", F::Msg(TOKEN_SPEC)),
];
const RES_ATTRS: &[(u64, &str, F)] = &[
    (1, "namespace", F::Str),
    (2, "verb", F::Str),
    (3, "group", F::Str),
    (4, "version", F::Str),
    (5, "resource", F::Str),
    (6, "subresource", F::Str),
    (7, "name", F::Str),
];
const NONRES_ATTRS: &[(u64, &str, F)] = &[(1, "path", F::Str), (2, "verb", F::Str)];
const SSAR_SPEC: &[(u64, &str, F)] = &[
    (1, "resourceAttributes", F::Msg(RES_ATTRS)),
    (2, "nonResourceAttributes", F::Msg(NONRES_ATTRS)),
];
const SSAR: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(META)),
    (2, "spec", F::Msg(SSAR_SPEC)),
];
const SAR_SPEC: &[(u64, &str, F)] = &[
    (1, "resourceAttributes", F::Msg(RES_ATTRS)),
    (2, "nonResourceAttributes", F::Msg(NONRES_ATTRS)),
    (3, "user", F::Str),
    (4, "groups", F::StrList),
    (6, "uid", F::Str),
];
const SAR: &[(u64, &str, F)] = &[(1, "metadata", F::Msg(META)), (2, "spec", F::Msg(SAR_SPEC))];
const SECRET: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(META)),
    (2, "data", F::BytesMap),
    (3, "type", F::Str),
    (4, "stringData", F::StrMap),
    (5, "immutable", F::Bool),
];
const CONFIGMAP: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(META)),
    (2, "data", F::StrMap),
    (3, "binaryData", F::BytesMap),
    (4, "immutable", F::Bool),
];
const NAMESPACE: &[(u64, &str, F)] = &[(1, "metadata", F::Msg(META))];
const SUBJECT: &[(u64, &str, F)] = &[
    (1, "kind", F::Str),
    (2, "apiGroup", F::Str),
    (3, "name", F::Str),
    (4, "namespace", F::Str),
];
const ROLE_REF: &[(u64, &str, F)] = &[
    (1, "apiGroup", F::Str),
    (2, "kind", F::Str),
    (3, "name", F::Str),
];
const BINDING: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(META)),
    (2, "subjects", F::MsgList(SUBJECT)),
    (3, "roleRef", F::Msg(ROLE_REF)),
];
const RULE: &[(u64, &str, F)] = &[
    (1, "verbs", F::StrList),
    (2, "apiGroups", F::StrList),
    (3, "resources", F::StrList),
    (4, "resourceNames", F::StrList),
    (5, "nonResourceURLs", F::StrList),
];
const ROLE: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(META)),
    (2, "rules", F::MsgList(RULE)),
];

const TIME: &[(u64, &str, F)] = &[(1, "seconds", F::Int), (2, "nanos", F::Int)];
const CSR_CONDITION: &[(u64, &str, F)] = &[
    (1, "type", F::Str),
    (6, "status", F::Str),
    (2, "reason", F::Str),
    (3, "message", F::Str),
    (4, "lastUpdateTime", F::Time),
    (5, "lastTransitionTime", F::Time),
];
const CSR_SPEC: &[(u64, &str, F)] = &[
    (1, "request", F::Bytes),
    (2, "username", F::Str),
    (3, "uid", F::Str),
    (4, "groups", F::StrList),
    (5, "usages", F::StrList),
    (7, "signerName", F::Str),
    (8, "expirationSeconds", F::Int),
];
const CSR_STATUS: &[(u64, &str, F)] = &[
    (1, "conditions", F::MsgList(CSR_CONDITION)),
    (2, "certificate", F::Bytes),
];
const CSR: &[(u64, &str, F)] = &[
    (1, "metadata", F::Msg(META)),
    (2, "spec", F::Msg(CSR_SPEC)),
    (3, "status", F::Msg(CSR_STATUS)),
];

struct Reader<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.p)?;
            self.p += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.varint()? as usize;
        let s = self.b.get(self.p..self.p + n)?;
        self.p += n;
        Some(s)
    }
    /// Next (field, wire type, payload) where payload is a varint value or a byte slice.
    fn field(&mut self) -> Option<(u64, Result<u64, &'a [u8]>)> {
        if self.p >= self.b.len() {
            return None;
        }
        let key = self.varint()?;
        let (num, wt) = (key >> 3, key & 7);
        let payload = match wt {
            0 => Ok(self.varint()?),
            2 => Err(self.bytes()?),
            1 => {
                self.p += 8;
                Ok(0)
            }
            5 => {
                self.p += 4;
                Ok(0)
            }
            _ => return None,
        };
        Some((num, payload))
    }
}

fn map_entry(b: &[u8]) -> Option<(String, Vec<u8>)> {
    let mut r = Reader { b, p: 0 };
    let (mut k, mut v) = (String::new(), vec![]);
    while let Some((n, pl)) = r.field() {
        match (n, pl) {
            (1, Err(s)) => k = String::from_utf8_lossy(s).into_owned(),
            (2, Err(s)) => v = s.to_vec(),
            _ => {}
        }
    }
    Some((k, v))
}

fn message(b: &[u8], schema: &[(u64, &str, F)]) -> Option<Value> {
    let mut out = Map::new();
    let mut r = Reader { b, p: 0 };
    while let Some((num, pl)) = r.field() {
        let Some((_, name, kind)) = schema.iter().find(|(n, _, _)| *n == num) else {
            continue;
        };
        let name = name.to_string();
        match (kind, pl) {
            (F::Str, Err(s)) => {
                out.insert(name, json!(String::from_utf8_lossy(s)));
            }
            (F::Bytes, Err(s)) => {
                use base64::Engine;
                out.insert(
                    name,
                    json!(base64::engine::general_purpose::STANDARD.encode(s)),
                );
            }
            (F::Time, Err(s)) => {
                let t = message(s, TIME)?;
                let secs = t.get("seconds").and_then(Value::as_i64).unwrap_or(0);
                let ts = jiff::Timestamp::from_second(secs).ok()?;
                out.insert(name, json!(ts.to_string()));
            }
            (F::Int, Ok(v)) => {
                out.insert(name, json!(v as i64));
            }
            (F::Bool, Ok(v)) => {
                out.insert(name, json!(v != 0));
            }
            (F::StrList, Err(s)) => {
                let e = out.entry(name).or_insert_with(|| json!([]));
                e.as_array_mut()?.push(json!(String::from_utf8_lossy(s)));
            }
            (F::StrMap, Err(s)) => {
                let (k, v) = map_entry(s)?;
                let e = out.entry(name).or_insert_with(|| json!({}));
                e.as_object_mut()?
                    .insert(k, json!(String::from_utf8_lossy(&v)));
            }
            (F::BytesMap, Err(s)) => {
                use base64::Engine;
                let (k, v) = map_entry(s)?;
                let e = out.entry(name).or_insert_with(|| json!({}));
                e.as_object_mut()?.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                );
            }
            (F::Msg(sub), Err(s)) => {
                out.insert(name, message(s, sub)?);
            }
            (F::MsgList(sub), Err(s)) => {
                let m = message(s, sub)?;
                out.entry(name)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()?
                    .push(m);
            }
            _ => {}
        }
    }
    Some(Value::Object(out))
}

/// Decode a protobuf-encoded request body (`k8s\0` + runtime.Unknown envelope) into JSON.
pub fn decode(body: &[u8]) -> ApiResult<Value> {
    let unsupported = |what: &str| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("test-apiserver cannot decode protobuf for {what}; send application/json"),
        )
    };
    let env = body
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| ApiError::bad_request("protobuf body without k8s magic"))?;
    let mut r = Reader { b: env, p: 0 };
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while let Some((num, pl)) = r.field() {
        match (num, pl) {
            (1, Err(tm)) => {
                let t = message(tm, &[(1, "apiVersion", F::Str), (2, "kind", F::Str)])
                    .unwrap_or_default();
                api_version = t
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                kind = t
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
            }
            (2, Err(b)) => raw = b,
            _ => {}
        }
    }
    let schema: &[(u64, &str, F)] = match kind.as_str() {
        "ServiceAccount" => SERVICE_ACCOUNT,
        "TokenRequest" => TOKEN_REQUEST,
        "SelfSubjectAccessReview" => SSAR,
        "SubjectAccessReview" => SAR,
        "Secret" => SECRET,
        "ConfigMap" => CONFIGMAP,
        "Namespace" => NAMESPACE,
        "RoleBinding" | "ClusterRoleBinding" => BINDING,
        "Role" | "ClusterRole" => ROLE,
        "CertificateSigningRequest" => CSR,
        other => return Err(unsupported(other)),
    };
    let mut v = message(raw, schema)
        .ok_or_else(|| ApiError::bad_request(format!("malformed protobuf for {kind}")))?;
    v["apiVersion"] = json!(api_version);
    v["kind"] = json!(kind);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld(field: u64, b: &[u8]) -> Vec<u8> {
        let mut v = vec![((field << 3) | 2) as u8, b.len() as u8];
        v.extend_from_slice(b);
        v
    }

    #[test]
    fn decodes_service_account_envelope() {
        let meta = [
            ld(1, b"bot"),
            ld(11, &[ld(1, b"app"), ld(2, b"x")].concat()),
        ]
        .concat();
        let sa = ld(1, &meta);
        let tm = [ld(1, b"v1"), ld(2, b"ServiceAccount")].concat();
        let body = [b"k8s\0".to_vec(), ld(1, &tm), ld(2, &sa)].concat();
        let v = decode(&body).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bot", "labels": {"app": "x"}}})
        );
        let tm = [ld(1, b"apps/v1"), ld(2, b"Deployment")].concat();
        assert_eq!(
            decode(&[b"k8s\0".to_vec(), ld(1, &tm)].concat())
                .unwrap_err()
                .code,
            415
        );
    }
}
