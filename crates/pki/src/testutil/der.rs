//! Minimal DER encoders for structures rcgen cannot express (multi-valued RDNs, repeated
//! attributes, raw GeneralNames, arbitrary requested extensions), and a TLV splitter.

/// One TLV; a SEQUENCE of encoded parts; an OBJECT IDENTIFIER from its arcs (the crate's own
/// encoders).
pub use crate::der::{oid, seq, tlv};

/// SET of already-encoded parts (in the given order).
pub fn set(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x31, &parts.concat())
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
