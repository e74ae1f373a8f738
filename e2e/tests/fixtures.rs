//! An "existing PKI" for the e2e tests: the project's one test-PKI kit (`pki::testutil`) with
//! the e2e defaults (a P-384 root valid for ten years, P-256 intermediates with pathLen 0 valid
//! for a year, P-256 workload keys), every private key registered with the leak scan.

use pki::testutil::{self as kit, CaOpts, KeyKind};
use rcgen::CustomExtension;
use time::{Duration, OffsetDateTime};

pub use pki::testutil::oids::ku;
pub use pki::testutil::{der, general_name, name_constraints_ext, oids, Ca, CsrBuilder};

fn registered(what: &str, ca: Ca) -> Ca {
    crate::leak_scan::register_private_key(what, &ca.key_pem);
    ca
}

/// A self-signed root valid for ten years.
pub fn root(cn: &str) -> Ca {
    let now = OffsetDateTime::now_utc();
    root_between(cn, now - Duration::days(1), now + Duration::days(3650))
}

/// A self-signed root valid from `not_before` to `not_after`.
pub fn root_between(cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Ca {
    let opts = CaOpts {
        not_before,
        not_after,
        ..CaOpts::default()
    };
    registered(
        &format!("key of root {cn:?}"),
        kit::ca(KeyKind::P384, cn, None, opts),
    )
}

/// An intermediate (pathLen 0) issued by `parent`, valid from `not_before` to `not_after`.
pub fn intermediate_between(
    parent: &Ca,
    cn: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Ca {
    let opts = CaOpts {
        path_len: Some(0),
        not_before,
        not_after,
        ..CaOpts::default()
    };
    registered(
        &format!("key of intermediate {cn:?}"),
        kit::ca(KeyKind::P256, cn, Some(parent), opts),
    )
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
    let opts = CaOpts {
        path_len,
        extra_extensions: extra,
        not_before: now - Duration::hours(1),
        not_after: now + Duration::days(365),
        ..CaOpts::default()
    };
    registered(
        &format!("key of intermediate {cn:?}"),
        kit::ca(KeyKind::P256, cn, Some(parent), opts),
    )
}

/// An intermediate (pathLen 0) valid for a year.
pub fn intermediate(parent: &Ca, cn: &str) -> Ca {
    intermediate_with(parent, cn, Some(0), Vec::new())
}

/// A fresh workload key and a CSR for `sans` (classified by `pki::testutil::san`: `://` → URI,
/// `@` → email, IP literal → IP, else DNS). Returns (key PEM, CSR PEM).
pub fn csr(sans: &[&str]) -> (String, String) {
    let (key, csr) = kit::csr(KeyKind::P256, None, sans);
    let key_pem = key.serialize_pem();
    crate::leak_scan::register_private_key(&format!("workload key for {sans:?}"), &key_pem);
    (key_pem, csr.pem().expect("CSR PEM"))
}

/// A leaf (not a CA) certificate issued by `parent`, with its key: (cert PEM, key PEM).
pub fn leaf_cert(parent: &Ca, dns: &str) -> (String, String) {
    let (cert, key) = kit::leaf_cert(parent, dns);
    crate::leak_scan::register_private_key(&format!("key of leaf {dns:?}"), &key);
    (cert, key)
}
