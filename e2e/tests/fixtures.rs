//! An "existing PKI" for tests: a root, intermediates issued by it, and workload CSRs.

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PublicKeyData, SanType, SigningKey,
};
use time::{Duration, OffsetDateTime};

/// A CA certificate and its key.
pub struct Ca {
    /// The certificate as PEM.
    pub pem: String,
    /// The key as PKCS#8 PEM.
    pub key_pem: String,
    params: CertificateParams,
    key: KeyPair,
}

impl Ca {
    /// An issuer handle for signing children.
    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

fn ca_params(
    cn: &str,
    path_len: Option<u8>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::OrganizationName, "Example Corp");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = not_before;
    p.not_after = not_after;
    p.use_authority_key_identifier_extension = true;
    p
}

/// A self-signed root valid for ten years.
pub fn root(cn: &str) -> Ca {
    let now = OffsetDateTime::now_utc();
    root_between(cn, now - Duration::days(1), now + Duration::days(3650))
}

/// A self-signed root valid from `not_before` to `not_after`.
pub fn root_between(cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Ca {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("root key");
    let params = ca_params(cn, None, not_before, not_after);
    let cert = params.self_signed(&key).expect("self-signed root");
    crate::leak_scan::register_private_key(&format!("key of root {cn:?}"), &key.serialize_pem());
    Ca {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        params,
        key,
    }
}

/// An intermediate issued by `parent`, valid from `not_before` to `not_after`.
pub fn intermediate_between(
    parent: &Ca,
    cn: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Ca {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("intermediate key");
    let params = ca_params(cn, Some(0), not_before, not_after);
    let cert = params
        .signed_by(&key, &parent.issuer())
        .expect("intermediate");
    crate::leak_scan::register_private_key(
        &format!("key of intermediate {cn:?}"),
        &key.serialize_pem(),
    );
    Ca {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        params,
        key,
    }
}

/// An intermediate valid for a year with a given pathLenConstraint (`None`: unconstrained) and
/// extra extensions (e.g. a hand-built nameConstraints).
pub fn intermediate_with(
    parent: &Ca,
    cn: &str,
    path_len: Option<u8>,
    extra: Vec<CustomExtension>,
) -> Ca {
    let now = OffsetDateTime::now_utc();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("intermediate key");
    let mut params = ca_params(
        cn,
        path_len,
        now - Duration::hours(1),
        now + Duration::days(365),
    );
    params.custom_extensions = extra;
    let cert = params
        .signed_by(&key, &parent.issuer())
        .expect("intermediate");
    Ca {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
        params,
        key,
    }
}

/// An intermediate valid for a year.
pub fn intermediate(parent: &Ca, cn: &str) -> Ca {
    let now = OffsetDateTime::now_utc();
    intermediate_between(
        parent,
        cn,
        now - Duration::hours(1),
        now + Duration::days(365),
    )
}

/// A fresh workload key and a CSR for `sans` (`spiffe://` and `https://` become URI SANs,
/// IP literals IP SANs, names with `@` emails, the rest DNS names). Returns (key PEM, CSR PEM).
pub fn csr(sans: &[&str]) -> (String, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("workload key");
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.subject_alt_names = sans
        .iter()
        .map(|s| {
            if s.contains("://") {
                SanType::URI(s.to_string().try_into().expect("uri"))
            } else if let Ok(ip) = s.parse() {
                SanType::IpAddress(ip)
            } else if s.contains('@') {
                SanType::Rfc822Name(s.to_string().try_into().expect("email"))
            } else {
                SanType::DnsName(s.to_string().try_into().expect("dns"))
            }
        })
        .collect();
    let csr = params.serialize_request(&key).expect("csr");
    crate::leak_scan::register_private_key(
        &format!("workload key for {sans:?}"),
        &key.serialize_pem(),
    );
    (key.serialize_pem(), csr.pem().expect("csr pem"))
}

/// A leaf (not a CA) certificate issued by `parent`, with its key: (cert PEM, key PEM).
pub fn leaf_cert(parent: &Ca, dns: &str) -> (String, String) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("leaf key");
    let mut params = CertificateParams::new(vec![dns.to_string()]).expect("params");
    params.is_ca = IsCa::ExplicitNoCa;
    let cert = params.signed_by(&key, &parent.issuer()).expect("leaf");
    crate::leak_scan::register_private_key(&format!("key of leaf {dns:?}"), &key.serialize_pem());
    (cert.pem(), key.serialize_pem())
}

/// Minimal DER encoders for structures rcgen cannot express (multi-valued RDNs, repeated
/// attributes, raw GeneralNames, arbitrary requested extensions).
pub mod der {
    /// One TLV.
    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = content.len();
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let bytes: Vec<u8> = n
                .to_be_bytes()
                .iter()
                .copied()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    /// SEQUENCE of already-encoded parts.
    pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &parts.concat())
    }

    /// SET of already-encoded parts (in the given order).
    pub fn set(parts: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x31, &parts.concat())
    }

    /// OBJECT IDENTIFIER.
    pub fn oid(arcs: &[u64]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut push = |mut v: u64| {
            let mut chunk = vec![(v & 0x7f) as u8];
            v >>= 7;
            while v > 0 {
                chunk.push(0x80 | (v & 0x7f) as u8);
                v >>= 7;
            }
            chunk.reverse();
            body.extend(chunk);
        };
        push(arcs[0] * 40 + arcs[1]);
        for a in &arcs[2..] {
            push(*a);
        }
        tlv(0x06, &body)
    }

    /// Parse a dotted OID.
    pub fn arcs(dotted: &str) -> Vec<u64> {
        dotted
            .split('.')
            .map(|a| a.parse().expect("OID arc"))
            .collect()
    }

    /// UTF8String.
    pub fn utf8(s: &str) -> Vec<u8> {
        tlv(0x0c, s.as_bytes())
    }

    /// OCTET STRING.
    pub fn octets(b: &[u8]) -> Vec<u8> {
        tlv(0x04, b)
    }

    /// BOOLEAN.
    pub fn boolean(b: bool) -> Vec<u8> {
        tlv(0x01, &[if b { 0xff } else { 0 }])
    }

    /// Split one TLV off the front of `input`: (tag, content, rest).
    pub fn read(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
        let (&tag, rest) = input.split_first().ok_or("empty input")?;
        let (&first, rest) = rest.split_first().ok_or("no length")?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return Err("bad length".into());
            }
            let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err("truncated".into());
        }
        Ok((tag, &rest[..len], &rest[len..]))
    }

    /// BIT STRING holding `bytes` with DER's minimal unused-bit count.
    pub fn bits(bytes: &[u8]) -> Vec<u8> {
        let unused = bytes
            .last()
            .map_or(0, |b| if *b == 0 { 0 } else { b.trailing_zeros() as u8 });
        let mut body = vec![unused];
        body.extend_from_slice(bytes);
        tlv(0x03, &body)
    }
}

/// GeneralName encoders (RFC 5280 section 4.2.1.6), raw so that hostile values survive.
pub mod general_name {
    use super::der;
    use std::net::IpAddr;

    /// dNSName from raw bytes (NUL, spaces, UTF-8 all kept as given).
    pub fn dns(name: &[u8]) -> Vec<u8> {
        der::tlv(0x82, name)
    }
    /// uniformResourceIdentifier.
    pub fn uri(uri: &str) -> Vec<u8> {
        der::tlv(0x86, uri.as_bytes())
    }
    /// rfc822Name.
    pub fn email(e: &str) -> Vec<u8> {
        der::tlv(0x81, e.as_bytes())
    }
    /// iPAddress (4 or 16 bytes).
    pub fn ip(ip: IpAddr) -> Vec<u8> {
        match ip {
            IpAddr::V4(v4) => der::tlv(0x87, &v4.octets()),
            IpAddr::V6(v6) => der::tlv(0x87, &v6.octets()),
        }
    }
    /// iPAddress as a name-constraint subnet (address then mask).
    pub fn ip_subnet(addr: &[u8], mask: &[u8]) -> Vec<u8> {
        der::tlv(0x87, &[addr, mask].concat())
    }
    /// otherName with a UTF8String value (e.g. a Microsoft UPN, 1.3.6.1.4.1.311.20.2.3).
    pub fn other_name(type_id: &str, value: &str) -> Vec<u8> {
        der::tlv(
            0xa0,
            &[
                der::oid(&der::arcs(type_id)),
                der::tlv(0xa0, &der::utf8(value)),
            ]
            .concat(),
        )
    }
    /// directoryName holding one RDN per (OID, value).
    pub fn directory_name(attrs: &[(&str, &str)]) -> Vec<u8> {
        let rdns: Vec<Vec<(String, Vec<u8>)>> = attrs
            .iter()
            .map(|(o, v)| vec![(o.to_string(), der::utf8(v))])
            .collect();
        der::tlv(0xa4, &super::name_der(&rdns))
    }
    /// registeredID.
    pub fn registered_id(oid: &str) -> Vec<u8> {
        let full = der::oid(&der::arcs(oid));
        der::tlv(0x88, &full[2..])
    }
    /// Classify like [`super::csr`]: `://` → URI, IP literal → IP, `@` → email, else DNS.
    pub fn auto(s: &str) -> Vec<u8> {
        if s.contains("://") {
            uri(s)
        } else if let Ok(ip) = s.parse::<IpAddr>() {
            self::ip(ip)
        } else if s.contains('@') {
            email(s)
        } else {
            dns(s.as_bytes())
        }
    }
}

/// Well-known OIDs used by hostile CSRs.
pub mod oids {
    /// commonName.
    pub const CN: &str = "2.5.4.3";
    /// organizationName.
    pub const O: &str = "2.5.4.10";
    /// organizationalUnitName.
    pub const OU: &str = "2.5.4.11";
    /// serialNumber (the subject attribute).
    pub const SERIAL_NUMBER: &str = "2.5.4.5";
    /// userId (UID).
    pub const UID: &str = "0.9.2342.19200300.100.1.1";
    /// emailAddress (PKCS#9).
    pub const EMAIL_ADDRESS: &str = "1.2.840.113549.1.9.1";
    /// domainComponent.
    pub const DC: &str = "0.9.2342.19200300.100.1.25";
    /// countryName.
    pub const C: &str = "2.5.4.6";
    /// subjectAltName.
    pub const SAN: &str = "2.5.29.17";
    /// keyUsage.
    pub const KEY_USAGE: &str = "2.5.29.15";
    /// extendedKeyUsage.
    pub const EKU: &str = "2.5.29.37";
    /// basicConstraints.
    pub const BASIC_CONSTRAINTS: &str = "2.5.29.19";
    /// nameConstraints.
    pub const NAME_CONSTRAINTS: &str = "2.5.29.30";
    /// subjectKeyIdentifier.
    pub const SKI: &str = "2.5.29.14";
    /// authorityInfoAccess.
    pub const AIA: &str = "1.3.6.1.5.5.7.1.1";
    /// EKU serverAuth.
    pub const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
    /// EKU clientAuth.
    pub const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";
    /// EKU codeSigning.
    pub const CODE_SIGNING: &str = "1.3.6.1.5.5.7.3.3";
    /// EKU timeStamping.
    pub const TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";
    /// EKU OCSPSigning.
    pub const OCSP_SIGNING: &str = "1.3.6.1.5.5.7.3.9";
    /// anyExtendedKeyUsage.
    pub const ANY_EKU: &str = "2.5.29.37.0";
}

/// keyUsage bits (first byte of the BIT STRING).
pub mod ku {
    /// digitalSignature.
    pub const DIGITAL_SIGNATURE: u8 = 0x80;
    /// keyEncipherment.
    pub const KEY_ENCIPHERMENT: u8 = 0x20;
    /// keyCertSign.
    pub const KEY_CERT_SIGN: u8 = 0x04;
    /// cRLSign.
    pub const CRL_SIGN: u8 = 0x02;
}

/// A Name from RDNs of (OID, encoded value TLV) attributes.
fn name_der(rdns: &[Vec<(String, Vec<u8>)>]) -> Vec<u8> {
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

    /// A CSR whose SANs are `sans` (classified like [`csr`]).
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

    /// Request keyUsage bits (see [`ku`]).
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

/// A critical nameConstraints extension for a CA from raw permitted and excluded
/// GeneralNames (each wrapped in a GeneralSubtree).
pub fn name_constraints_ext(permitted: &[Vec<u8>], excluded: &[Vec<u8>]) -> CustomExtension {
    let subtrees = |names: &[Vec<u8>]| {
        names
            .iter()
            .map(|n| der::seq(std::slice::from_ref(n)))
            .collect::<Vec<_>>()
    };
    let mut body = Vec::new();
    if !permitted.is_empty() {
        body.push(der::tlv(0xa0, &subtrees(permitted).concat()));
    }
    if !excluded.is_empty() {
        body.push(der::tlv(0xa1, &subtrees(excluded).concat()));
    }
    let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], der::seq(&body));
    ext.set_criticality(true);
    ext
}
