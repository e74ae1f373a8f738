//! X.509 encodings of what a token returns: ECDSA `r || s` as DER, the RSASSA-PSS
//! AlgorithmIdentifier rcgen cannot name.

use super::Pkcs11Error;

/// id-RSASSA-PSS.
pub const OID_RSASSA_PSS: &str = "1.2.840.113549.1.1.10";

/// The AlgorithmIdentifier of RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (RFC
/// 4055 parameters, hash AlgorithmIdentifiers with NULL parameters).
pub const RSASSA_PSS_SHA256_ALG_ID: &str = "3041\
06092a864886f70d01010a\
3034\
a00f300d06096086480165030402010500\
a11c301a06092a864886f70d010108300d06096086480165030402010500\
a203020120";

/// PKCS#11 ECDSA signatures are `r || s`, each `n` bytes; X.509 wants
/// `SEQUENCE { INTEGER r, INTEGER s }`.
pub fn ecdsa_der(raw: &[u8], n: usize) -> Result<Vec<u8>, Pkcs11Error> {
    if raw.len() != 2 * n {
        return Err(Pkcs11Error::Signing(format!(
            "the token returned a {}-byte ECDSA signature, expected {}",
            raw.len(),
            2 * n
        )));
    }
    let int = |v: &[u8]| {
        let v = &v[v.iter().take_while(|b| **b == 0).count().min(v.len() - 1)..];
        let mut out = vec![0x02];
        let pad = v[0] & 0x80 != 0;
        out.push((v.len() + usize::from(pad)) as u8);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
        out
    };
    let mut body = int(&raw[..n]);
    body.extend(int(&raw[n..]));
    // At most 2 * (2 + 49) = 102 bytes: a one-byte length.
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_ecdsa_signatures_become_der_with_minimal_integers() {
        // High bit set: a leading zero; leading zeros stripped; zero stays one byte.
        let mut raw = vec![0x80; 32];
        raw.extend([0u8; 31]);
        raw.push(0x05);
        let der = ecdsa_der(&raw, 32).unwrap();
        assert_eq!(&der[..4], &[0x30, 2 + 33 + 3, 0x02, 33]);
        assert_eq!(der[4], 0);
        assert_eq!(&der[der.len() - 3..], &[0x02, 1, 0x05]);
        let zero = ecdsa_der(&[0u8; 64], 32).unwrap();
        assert_eq!(zero, vec![0x30, 6, 2, 1, 0, 2, 1, 0]);
        // A real signature's DER parses as what aws-lc-rs verifies: checked end to end in
        // the SoftHSM2 tests; a wrong length is refused here.
        assert!(ecdsa_der(&[1u8; 63], 32).is_err());
        let p384 = ecdsa_der(&[0xff; 96], 48).unwrap();
        assert_eq!(p384.len(), 2 + 2 * (2 + 49));
    }
}
