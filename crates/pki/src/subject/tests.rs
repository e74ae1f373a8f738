use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use super::super::der::{oid, seq, tlv};
use super::*;

const O: &[u64] = &[2, 5, 4, 10];
const CN: &[u64] = &[2, 5, 4, 3];

fn atv(arcs: &[u64], tag: u8, value: &str) -> Vec<u8> {
    seq(&[oid(arcs), tlv(tag, value.as_bytes())])
}

fn rdn(atvs: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x31, &atvs.concat())
}

fn check(rdns: &[Vec<u8>], empty: EmptyValues) -> Result<Subject, String> {
    let der = seq(rdns);
    let (_, name) = X509Name::from_der(&der).map_err(|e| e.to_string())?;
    validate_subject(&name, &der, "the CSR", empty).map_err(|e| e.to_string())
}

fn drop(rdns: &[Vec<u8>]) -> Result<Subject, String> {
    check(rdns, EmptyValues::Drop)
}

#[test]
fn istio_agent_subject_is_dropped() {
    // Go's pkix.Name{Organization: []string{""}}: one RDN, O as an empty PrintableString.
    let s = drop(&[rdn(&[atv(O, 0x13, "")])]).unwrap();
    assert_eq!(s.common_name, None);
    assert_eq!(s.dropped, vec!["O=\"\"".to_string()]);
}

#[test]
fn empty_value_in_every_string_type_is_dropped() {
    for tag in STRING_TAGS {
        let s = drop(&[rdn(&[atv(O, tag, "")])]).unwrap_or_else(|e| panic!("{tag:#x}: {e}"));
        assert_eq!(s.common_name, None, "{tag:#x}");
        assert_eq!(s.dropped.len(), 1, "{tag:#x}");
    }
}

#[test]
fn empty_naming_attributes_are_dropped_and_the_cn_kept() {
    let mut rdns: Vec<Vec<u8>> = EMPTY_ALLOWED
        .iter()
        .map(|o| {
            let arcs: Vec<u64> = o.split('.').map(|a| a.parse().unwrap()).collect();
            rdn(&[atv(&arcs, 0x0c, "")])
        })
        .collect();
    rdns.push(rdn(&[atv(CN, 0x0c, "web.team-a.svc")]));
    let s = drop(&rdns).unwrap();
    assert_eq!(s.common_name.as_deref(), Some("web.team-a.svc"));
    assert_eq!(s.dropped.len(), EMPTY_ALLOWED.len());
    // The same CN beside an empty O in one multi-valued RDN.
    let s = drop(&[rdn(&[atv(CN, 0x0c, "web.team-a.svc"), atv(O, 0x13, "")])]).unwrap();
    assert_eq!(s.common_name.as_deref(), Some("web.team-a.svc"));
}

#[test]
fn empty_values_of_other_types_are_refused() {
    for (arcs, name) in [
        (&[0, 9, 2342, 19200300, 100, 1, 25][..], "domainComponent"),
        (&[0, 9, 2342, 19200300, 100, 1, 1][..], "UID"),
        (&[1, 2, 840, 113549, 1, 9, 1][..], "emailAddress"),
        (&[1, 3, 6, 1, 4, 1, 99999, 7][..], "1.3.6.1.4.1.99999.7"),
    ] {
        let err = drop(&[rdn(&[atv(arcs, 0x0c, "")])]).unwrap_err();
        assert!(err.contains("may not be empty"), "{name}: {err}");
    }
}

#[test]
fn empty_non_string_values_are_refused() {
    for tag in [0x04u8, 0x05, 0x03, 0x02] {
        let der = seq(&[oid(O), tlv(tag, &[])]);
        let err = drop(&[rdn(&[der])]).unwrap_err();
        assert!(err.contains("has subject attribute O="), "{tag:#x}: {err}");
    }
    let err = drop(&[rdn(&[seq(&[oid(O), seq(&[])])])]).unwrap_err();
    assert!(err.contains("O=<0 bytes>"), "{err}");
}

#[test]
fn an_empty_value_never_hides_a_non_empty_one() {
    for rdns in [
        vec![
            rdn(&[atv(O, 0x13, "")]),
            rdn(&[atv(O, 0x0c, "system:masters")]),
        ],
        vec![
            rdn(&[atv(O, 0x0c, "system:masters")]),
            rdn(&[atv(O, 0x13, "")]),
        ],
        vec![rdn(&[atv(O, 0x13, ""), atv(O, 0x0c, "system:masters")])],
    ] {
        let err = drop(&rdns).unwrap_err();
        assert!(err.contains("O=\"system:masters\""), "{err}");
    }
    let err = drop(&[
        rdn(&[atv(CN, 0x0c, "a.team-a.svc")]),
        rdn(&[atv(O, 0x13, "")]),
        rdn(&[atv(CN, 0x0c, "b.kube-system.svc")]),
    ])
    .unwrap_err();
    assert!(err.contains("more than one common name"), "{err}");
    // An empty CN is dropped; the real one is the CN.
    let s = drop(&[
        rdn(&[atv(CN, 0x0c, "")]),
        rdn(&[atv(CN, 0x0c, "a.team-a.svc")]),
    ])
    .unwrap();
    assert_eq!(s.common_name.as_deref(), Some("a.team-a.svc"));
}

#[test]
fn issued_certificates_get_no_empty_attributes() {
    let err = check(&[rdn(&[atv(O, 0x13, "")])], EmptyValues::Refuse).unwrap_err();
    assert!(
        err.contains("O=\"\"") && err.contains("may not be empty"),
        "{err}"
    );
    assert!(
        err.ends_with("only an empty subject or a single CN is allowed"),
        "{err}"
    );
}

#[test]
fn malformed_names_stay_refused() {
    let err = drop(&[rdn(&[atv(O, 0x13, "")]), tlv(0x31, &[])]).unwrap_err();
    assert!(err.contains("malformed subject"), "{err}");
}
