//! PKCS#10 requests built byte by byte, for the shapes rcgen refuses to make.

use rcgen::{KeyPair, PublicKeyData, SigningKey};

use super::oids;
use super::{der, general_name};

/// A Name from RDNs of (OID, encoded value TLV) attributes.
pub(super) fn name_der(rdns: &[Vec<(String, Vec<u8>)>]) -> Vec<u8> {
    der::seq(
        &rdns
            .iter()
            .map(|rdn| {
                der::set(
                    &rdn.iter()
                        .map(|(o, v)| der::seq(&[der::oid(&der::arcs(o)), v.clone()]))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>(),
    )
}

/// A PKCS#10 request built byte by byte and correctly self-signed (ECDSA P-256), so that a
/// refusal comes from the policy and not from the signature check.
#[derive(Clone, Default)]
pub struct CsrBuilder {
    rdns: Vec<Vec<(String, Vec<u8>)>>,
    sans: Option<Vec<Vec<u8>>>,
    extensions: Vec<(String, bool, Vec<u8>)>,
    extra_attributes: Vec<Vec<u8>>,
    extra_extension_sets: Vec<Vec<u8>>,
}

impl CsrBuilder {
    /// An empty subject, no extensions.
    pub fn new() -> Self {
        Self::default()
    }

    /// A CSR whose SANs are `sans` (classified like [`super::san`]).
    pub fn sans(sans: &[&str]) -> Self {
        let mut b = Self::new();
        for s in sans {
            b = b.san(general_name::auto(s));
        }
        b
    }

    /// Append a single-attribute RDN `CN=value`.
    pub fn cn(self, value: &str) -> Self {
        self.attr(oids::CN, value)
    }

    /// Append a single-attribute RDN with a UTF8String value.
    pub fn attr(self, oid: &str, value: &str) -> Self {
        self.attr_raw(oid, der::utf8(value))
    }

    /// Append a single-attribute RDN whose value is the given DER TLV (any string type, or
    /// something that is no string at all).
    pub fn attr_raw(mut self, oid: &str, value: Vec<u8>) -> Self {
        self.rdns.push(vec![(oid.into(), value)]);
        self
    }

    /// Append a multi-valued RDN of UTF8String values.
    pub fn multi_rdn(mut self, attrs: &[(&str, &str)]) -> Self {
        self.rdns.push(
            attrs
                .iter()
                .map(|(o, v)| (o.to_string(), der::utf8(v)))
                .collect(),
        );
        self
    }

    /// Append a raw GeneralName to the SAN extension (created on first use).
    pub fn san(mut self, general_name: Vec<u8>) -> Self {
        self.sans.get_or_insert_with(Vec::new).push(general_name);
        self
    }

    /// Append a requested extension with a DER value.
    pub fn ext(mut self, oid: &str, critical: bool, value: Vec<u8>) -> Self {
        self.extensions.push((oid.into(), critical, value));
        self
    }

    /// Append a second extensionRequest attribute holding a SAN extension with `sans`.
    pub fn second_extension_request(mut self, sans: &[Vec<u8>]) -> Self {
        self.extra_attributes.push(extension_request(&[ext_der(
            oids::SAN,
            false,
            &der::seq(sans),
        )]));
        self
    }

    /// Put a second Extensions value (a SAN extension with `sans`) into the SET of the one
    /// extensionRequest attribute (PKCS#9 allows a SET; Go reads every value).
    pub fn second_extension_set(mut self, sans: &[Vec<u8>]) -> Self {
        self.extra_extension_sets
            .push(der::seq(&[ext_der(oids::SAN, false, &der::seq(sans))]));
        self
    }

    /// Request keyUsage bits (see [`oids::ku`]).
    pub fn key_usage(self, bits: u8) -> Self {
        self.ext(oids::KEY_USAGE, true, der::bits(&[bits]))
    }

    /// Request extended key usages by OID.
    pub fn eku(self, eku_oids: &[&str]) -> Self {
        let body = der::seq(
            &eku_oids
                .iter()
                .map(|o| der::oid(&der::arcs(o)))
                .collect::<Vec<_>>(),
        );
        self.ext(oids::EKU, false, body)
    }

    /// Request basicConstraints with the given cA flag.
    pub fn basic_constraints(self, ca: bool) -> Self {
        let body = if ca {
            der::seq(&[der::boolean(true)])
        } else {
            der::seq(&[])
        };
        self.ext(oids::BASIC_CONSTRAINTS, true, body)
    }

    /// The request as PEM, signed with a fresh P-256 key.
    pub fn build(&self) -> String {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("workload key");
        self.build_with(&key)
    }

    /// The request as PEM, signed with `key` (ECDSA P-256).
    pub fn build_with(&self, key: &KeyPair) -> String {
        let mut exts: Vec<Vec<u8>> = Vec::new();
        if let Some(sans) = &self.sans {
            exts.push(ext_der(oids::SAN, false, &der::seq(sans)));
        }
        for (o, critical, value) in &self.extensions {
            exts.push(ext_der(o, *critical, value));
        }
        let mut attrs = Vec::new();
        if !exts.is_empty() || !self.extra_extension_sets.is_empty() {
            let mut values = vec![der::seq(&exts)];
            values.extend(self.extra_extension_sets.iter().cloned());
            attrs.push(der::seq(&[
                der::oid(&[1, 2, 840, 113549, 1, 9, 14]),
                der::set(&values),
            ]));
        }
        attrs.extend(self.extra_attributes.iter().cloned());
        let attributes = der::tlv(0xa0, &attrs.concat());
        let info = der::seq(&[
            der::tlv(0x02, &[0]),
            name_der(&self.rdns),
            key.subject_public_key_info(),
            attributes,
        ]);
        let sig = key.sign(&info).expect("sign CSR");
        let mut sig_bits = vec![0u8];
        sig_bits.extend(sig);
        let csr = der::seq(&[
            info,
            der::seq(&[der::oid(&[1, 2, 840, 10045, 4, 3, 2])]),
            der::tlv(0x03, &sig_bits),
        ]);
        pem::encode_config(
            &pem::Pem::new("CERTIFICATE REQUEST", csr),
            pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
        )
    }
}

fn extension_request(exts: &[Vec<u8>]) -> Vec<u8> {
    der::seq(&[
        der::oid(&[1, 2, 840, 113549, 1, 9, 14]),
        der::set(&[der::seq(exts)]),
    ])
}

fn ext_der(oid: &str, critical: bool, value: &[u8]) -> Vec<u8> {
    let mut parts = vec![der::oid(&der::arcs(oid))];
    if critical {
        parts.push(der::boolean(true));
    }
    parts.push(der::octets(value));
    der::seq(&parts)
}
