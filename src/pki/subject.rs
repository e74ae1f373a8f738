//! The only subjects pki-issuer issues: empty, or exactly one common name.
//!
//! Many mTLS consumers authorise on the subject DN (Kubernetes client-certificate auth reads
//! `O` as groups), so every other attribute is refused in requests and in issued
//! certificates alike.

use x509_parser::der_parser::oid::Oid;
use x509_parser::objects::{oid2abbrev, oid_registry};
use x509_parser::oid_registry::OID_X509_COMMON_NAME;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use super::der;
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

/// Counts the RDNs and attributes of a DER Name, refusing empty RDNs and anything that is not
/// a SET of SEQUENCEs (a parser that stops early would otherwise hide what follows).
fn raw_shape(name_tlv: &[u8]) -> Option<(usize, usize)> {
    let (name, rest) = der::read_tlv(name_tlv).ok()?;
    if name.tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let mut attrs = 0;
    let rdns = der::children(name.content).ok()?;
    for rdn in &rdns {
        let atvs = der::children(rdn.content).ok()?;
        if rdn.tag != 0x31 || atvs.is_empty() || atvs.iter().any(|a| a.tag != 0x30) {
            return None;
        }
        attrs += atvs.len();
    }
    Some((rdns.len(), attrs))
}

/// Every attribute of a DER Name, described for messages (`O="system:masters"`), read
/// without the parser so that nothing after a malformed RDN is hidden.
fn raw_attributes(name_tlv: &[u8]) -> Vec<String> {
    let Ok((name, _)) = der::read_tlv(name_tlv) else {
        return vec![];
    };
    let rdns = der::children(name.content).unwrap_or_default();
    let mut out = Vec::new();
    for rdn in rdns {
        for atv in der::children(rdn.content).unwrap_or_default() {
            let parts = der::children(atv.content).unwrap_or_default();
            let (Some(oid), Some(value)) = (parts.first(), parts.get(1)) else {
                continue;
            };
            let oid = Oid::new(std::borrow::Cow::Borrowed(oid.content));
            let name = oid2abbrev(&oid, oid_registry())
                .map(str::to_string)
                .unwrap_or_else(|_| oid.to_id_string());
            let text = match value.tag {
                0x0c | 0x13 | 0x16 | 0x12 => std::str::from_utf8(value.content)
                    .map_or_else(|_| "<not UTF-8>".to_string(), |s| format!("{s:?}")),
                _ => format!("<{} bytes>", value.content.len()),
            };
            out.push(format!("{name}={text}"));
        }
    }
    out
}

/// The common name of a subject that is empty or exactly one RDN holding one CN attribute;
/// anything else is [`PkiError::SubjectNotAllowed`] naming the offending attribute.
/// `name_tlv` is the Name's complete DER (the parsed `name` must account for all of it);
/// `what` says whose subject it is (for the message).
pub fn single_common_name(
    name: &X509Name<'_>,
    name_tlv: &[u8],
    what: &str,
) -> Result<Option<String>, PkiError> {
    let parsed = (name.iter_rdn().count(), name.iter_attributes().count());
    if raw_shape(name_tlv) != Some(parsed) {
        let attrs = raw_attributes(name_tlv);
        let listed = if attrs.is_empty() {
            String::new()
        } else {
            format!(" holding {}", attrs.join(", "))
        };
        return Err(PkiError::SubjectNotAllowed(format!(
            "{what} has a malformed subject{listed} (an empty or unreadable relative distinguished name); only an empty subject or a single CN is allowed"
        )));
    }
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

/// The complete DER of the subject Name inside a TBSCertificate or CertificationRequestInfo.
pub fn subject_tlv(tbs: &[u8], is_certificate: bool) -> Result<Vec<u8>, PkiError> {
    let bad = || PkiError::InvalidCertificate("cannot locate the subject name".into());
    let (outer, _) = der::read_tlv(tbs).map_err(|_| bad())?;
    let fields = der::children(outer.content).map_err(|_| bad())?;
    let index = match (is_certificate, fields.first().map(|f| f.tag)) {
        // version [0], serialNumber, signature, issuer, validity, subject
        (true, Some(0xa0)) => 5,
        (true, _) => 4,
        // version, subject
        (false, _) => 1,
    };
    fields.get(index).map(|f| f.full.to_vec()).ok_or_else(bad)
}
