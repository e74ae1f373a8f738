//! The only subjects pki-issuer issues: empty, or exactly one common name.
//!
//! Many mTLS consumers authorise on the subject DN (Kubernetes client-certificate auth reads
//! `O` as groups), so every other attribute is refused in requests and in issued
//! certificates alike.

use x509_parser::objects::{oid2abbrev, oid_registry};
use x509_parser::oid_registry::OID_X509_COMMON_NAME;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use super::error::PkiError;

fn attr_name(attr: &AttributeTypeAndValue<'_>) -> String {
    oid2abbrev(attr.attr_type(), oid_registry())
        .map(str::to_string)
        .unwrap_or_else(|_| attr.attr_type().to_id_string())
}

fn describe(attr: &AttributeTypeAndValue<'_>) -> String {
    let value = attr.as_str().map_or_else(
        |_| format!("<{} bytes>", attr.as_slice().len()),
        |s| format!("{s:?}"),
    );
    format!("{}={value}", attr_name(attr))
}

/// The common name of a subject that is empty or exactly one RDN holding one CN attribute;
/// anything else is [`PkiError::SubjectNotAllowed`] naming the offending attribute. `what`
/// says whose subject it is (for the message).
pub fn single_common_name(name: &X509Name<'_>, what: &str) -> Result<Option<String>, PkiError> {
    let rdns: Vec<_> = name.iter_rdn().collect();
    let refuse = |detail: String| {
        Err(PkiError::SubjectNotAllowed(format!(
            "{what} {detail}; only an empty subject or a single CN is allowed"
        )))
    };
    let attrs: Vec<&AttributeTypeAndValue<'_>> = name.iter_attributes().collect();
    if let Some(other) = attrs
        .iter()
        .find(|a| a.attr_type() != &OID_X509_COMMON_NAME)
    {
        return refuse(format!("has subject attribute {}", describe(other)));
    }
    match (rdns.len(), attrs.as_slice()) {
        (0, []) => Ok(None),
        (1, [cn]) => match cn.as_str() {
            Ok(s) => Ok(Some(s.to_string())),
            Err(_) => refuse("has a common name that is not a string".into()),
        },
        (_, [first, second, ..]) => refuse(format!(
            "has more than one common name ({} and {})",
            describe(first),
            describe(second)
        )),
        _ => refuse("has an empty relative distinguished name".into()),
    }
}
