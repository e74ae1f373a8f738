//! The only subjects pki-issuer issues: empty, or exactly one common name.
//!
//! Many mTLS consumers authorise on the subject DN (Kubernetes client-certificate auth reads
//! `O` as groups), so every other attribute is refused in requests and in issued
//! certificates alike. One exception, for what real clients send: a request may carry
//! naming attributes whose value is an empty string (istio-agent's CSR subject is exactly
//! `O=""`). An empty value grants nothing; such attributes are dropped, never issued.

use x509_parser::der_parser::oid::Oid;
use x509_parser::objects::{oid2abbrev, oid_registry};
use x509_parser::oid_registry::OID_X509_COMMON_NAME;
use x509_parser::x509::X509Name;

use super::der::{self, Tlv};
use super::error::PkiError;

/// What to do with an attribute whose value is an empty string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptyValues {
    /// Drop it when its type is one of [`EMPTY_ALLOWED`] (requests: Go's `pkix.Name` emits
    /// `O=""` for `Organization: []string{""}`, as istio-agent does).
    Drop,
    /// Refuse it like any other attribute (certificates pki-issuer writes).
    Refuse,
}

/// The attribute types an empty value is dropped for: the naming attributes Go's
/// `pkix.Name` writes from its fields (C, O, OU, L, ST, street, postalCode, serialNumber,
/// CN). Any other type (UID, DC, emailAddress, unknown OIDs) is refused even when empty.
pub const EMPTY_ALLOWED: [&str; 9] = [
    "2.5.4.6", "2.5.4.10", "2.5.4.11", "2.5.4.7", "2.5.4.8", "2.5.4.9", "2.5.4.17", "2.5.4.5",
    "2.5.4.3",
];

/// ASN.1 string tags (UTF8, Numeric, Printable, Teletex, IA5, Visible, Universal, BMP).
const STRING_TAGS: [u8; 8] = [0x0c, 0x12, 0x13, 0x14, 0x16, 0x1a, 0x1c, 0x1e];

/// A validated subject.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    /// The single common name, if any.
    pub common_name: Option<String>,
    /// The empty attributes that were dropped, as `O=""` (for messages and Events).
    pub dropped: Vec<String>,
}

/// One attribute of a Name, read from the DER.
struct Attribute<'a> {
    oid: Oid<'a>,
    value: Tlv<'a>,
}

impl Attribute<'_> {
    fn name(&self) -> String {
        oid2abbrev(&self.oid, oid_registry())
            .map(str::to_string)
            .unwrap_or_else(|_| self.oid.to_id_string())
    }

    fn is_empty_string(&self) -> bool {
        STRING_TAGS.contains(&self.value.tag) && self.value.content.is_empty()
    }

    fn describe(&self) -> String {
        let text = match self.value.tag {
            0x0c | 0x12 | 0x13 | 0x14 | 0x16 | 0x1a => std::str::from_utf8(self.value.content)
                .map_or_else(|_| "<not UTF-8>".to_string(), |s| format!("{s:?}")),
            _ if self.is_empty_string() => "\"\"".to_string(),
            _ => format!("<{} bytes>", self.value.content.len()),
        };
        format!("{}={text}", self.name())
    }
}

/// Every attribute of a DER Name, in order, with its RDN count; `None` when the Name is not
/// exactly a SEQUENCE of non-empty SETs of (OID, value) SEQUENCEs (a parser that stops early
/// would otherwise hide what follows).
fn raw_attributes(name_tlv: &[u8]) -> Option<(usize, Vec<Attribute<'_>>)> {
    let (name, rest) = der::read_tlv(name_tlv).ok()?;
    if name.tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let rdns = der::children(name.content).ok()?;
    let mut attrs = Vec::new();
    for rdn in &rdns {
        let atvs = der::children(rdn.content).ok()?;
        if rdn.tag != 0x31 || atvs.is_empty() {
            return None;
        }
        for atv in atvs {
            let parts = der::children(atv.content).ok()?;
            match (atv.tag, parts.as_slice()) {
                (0x30, [oid, value]) if oid.tag == 0x06 => attrs.push(Attribute {
                    oid: Oid::new(std::borrow::Cow::Borrowed(oid.content)),
                    value: Tlv {
                        tag: value.tag,
                        full: value.full,
                        content: value.content,
                    },
                }),
                _ => return None,
            }
        }
    }
    Some((rdns.len(), attrs))
}

/// Best-effort list of a malformed Name's attributes, for the refusal message.
fn salvage(name_tlv: &[u8]) -> String {
    let Ok((name, _)) = der::read_tlv(name_tlv) else {
        return String::new();
    };
    let mut out = Vec::new();
    for rdn in der::children(name.content).unwrap_or_default() {
        for atv in der::children(rdn.content).unwrap_or_default() {
            if let [oid, value, ..] = der::children(atv.content).unwrap_or_default().as_slice() {
                let attr = Attribute {
                    oid: Oid::new(std::borrow::Cow::Borrowed(oid.content)),
                    value: Tlv {
                        tag: value.tag,
                        full: value.full,
                        content: value.content,
                    },
                };
                out.push(attr.describe());
            }
        }
    }
    if out.is_empty() {
        String::new()
    } else {
        format!(" holding {}", out.join(", "))
    }
}

/// Validates a subject: empty, or one CN, plus (with [`EmptyValues::Drop`]) empty-valued
/// attributes of the [`EMPTY_ALLOWED`] types; anything else is
/// [`PkiError::SubjectNotAllowed`] naming the offending attribute. `name_tlv` is the Name's
/// complete DER, read independently of x509-parser's `name` (they must agree); `what` says
/// whose subject it is (for the message).
pub fn validate_subject(
    name: &X509Name<'_>,
    name_tlv: &[u8],
    what: &str,
    empty: EmptyValues,
) -> Result<Subject, PkiError> {
    let only = match empty {
        EmptyValues::Drop => "only an empty subject or a single CN (plus empty naming attributes such as O=\"\") is allowed",
        EmptyValues::Refuse => "only an empty subject or a single CN is allowed",
    };
    let refuse = |detail: String| {
        Err(PkiError::SubjectNotAllowed(format!(
            "{what} {detail}; {only}"
        )))
    };
    let parsed = (name.iter_rdn().count(), name.iter_attributes().count());
    let Some((_, attrs)) = raw_attributes(name_tlv).filter(|(r, a)| (*r, a.len()) == parsed) else {
        return refuse(format!(
            "has a malformed subject{} (an empty or unreadable relative distinguished name)",
            salvage(name_tlv)
        ));
    };
    let mut subject = Subject::default();
    let mut cns = Vec::new();
    for (attr, parsed) in attrs.iter().zip(name.iter_attributes()) {
        let oid = attr.oid.to_id_string();
        if empty == EmptyValues::Drop
            && attr.is_empty_string()
            && EMPTY_ALLOWED.contains(&oid.as_str())
        {
            subject.dropped.push(attr.describe());
        } else if attr.is_empty_string() {
            return refuse(format!(
                "has subject attribute {} (empty, but {} may not be empty)",
                attr.describe(),
                attr.name()
            ));
        } else if attr.oid != OID_X509_COMMON_NAME {
            return refuse(format!("has subject attribute {}", attr.describe()));
        } else {
            match parsed.as_str() {
                Ok(s) => cns.push((s.to_string(), attr.describe())),
                Err(_) => return refuse("has a common name that is not a string".into()),
            }
        }
    }
    match cns.as_slice() {
        [] => {}
        [(cn, _)] => subject.common_name = Some(cn.clone()),
        [(_, first), (_, second), ..] => {
            return refuse(format!(
                "has more than one common name ({first} and {second})"
            ))
        }
    }
    Ok(subject)
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

#[cfg(test)]
mod tests;
