//! Minimal DER TLV helpers for the few structures rcgen cannot produce or
//! that must be spliced byte-exactly (issuer name, AIA extension).

use super::error::PkiError;

/// One parsed TLV: tag byte and the full encoding (header + content).
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub full: &'a [u8],
    pub content: &'a [u8],
}

fn bad(what: &str) -> PkiError {
    PkiError::InvalidCertificate(format!("malformed DER: {what}"))
}

/// Reads one TLV from the front of `input`, returning it and the rest.
pub(crate) fn read_tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), PkiError> {
    if input.len() < 2 {
        return Err(bad("truncated header"));
    }
    let tag = input[0];
    if tag & 0x1f == 0x1f {
        return Err(bad("high tag numbers are not supported"));
    }
    let first = input[1];
    let (len, hdr) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || input.len() < 2 + n {
            return Err(bad("bad length"));
        }
        let mut len = 0usize;
        for b in &input[2..2 + n] {
            len = (len << 8) | *b as usize;
        }
        (len, 2 + n)
    };
    let end = hdr.checked_add(len).ok_or_else(|| bad("length overflow"))?;
    if input.len() < end {
        return Err(bad("truncated content"));
    }
    Ok((
        Tlv {
            tag,
            full: &input[..end],
            content: &input[hdr..end],
        },
        &input[end..],
    ))
}

/// Splits the content of a constructed value into its child TLVs.
pub(crate) fn children(mut content: &[u8]) -> Result<Vec<Tlv<'_>>, PkiError> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (tlv, rest) = read_tlv(content)?;
        out.push(tlv);
        content = rest;
    }
    Ok(out)
}

/// Encodes a TLV with the given tag and content.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Encodes a SEQUENCE of already-encoded elements.
pub fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// Encodes an OBJECT IDENTIFIER from its arcs.
pub fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut push = |mut v: u64| {
        let mut tmp = vec![(v & 0x7f) as u8];
        v >>= 7;
        while v > 0 {
            tmp.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        tmp.reverse();
        body.extend(tmp);
    };
    push(arcs[0] * 40 + arcs[1]);
    for a in &arcs[2..] {
        push(*a);
    }
    tlv(0x06, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_long_lengths() {
        let content = vec![7u8; 300];
        let enc = tlv(0x04, &content);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (t, rest) = read_tlv(&enc).unwrap();
        assert!(rest.is_empty());
        assert_eq!(t.content, &content[..]);
        assert!(read_tlv(&enc[..100]).is_err());
    }

    #[test]
    fn oid_encoding() {
        // 1.3.6.1.5.5.7.1.1 (authorityInfoAccess)
        assert_eq!(
            oid(&[1, 3, 6, 1, 5, 5, 7, 1, 1]),
            vec![0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x01]
        );
        assert_eq!(
            oid(&[2, 16, 840, 1, 113730, 4, 1])[2..5],
            [0x60, 0x86, 0x48]
        );
    }
}
