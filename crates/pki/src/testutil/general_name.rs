//! GeneralName encoders (RFC 5280 section 4.2.1.6), raw so that hostile values survive.

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
    der::tlv(0xa4, &super::csr_builder::name_der(&rdns))
}
/// registeredID.
pub fn registered_id(oid: &str) -> Vec<u8> {
    let full = der::oid(&der::arcs(oid));
    der::tlv(0x88, &full[2..])
}
/// Classify like [`super::san`]: `://` → URI, IP literal → IP, `@` → email, else DNS.
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
