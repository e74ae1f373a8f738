//! Target `remote_ca_response`: the CFSSL answer parsers (`sign`/`authsign`, `info`), the PEM
//! leaf extraction, and what the loader does with an `info` answer (profile expiry, signer PEM).
//!
//! Input: two bytes of HTTP status (big endian, folded into 100..=599), then the body.

use hyper::StatusCode;
use pki_issuer::api::duration;
use pki_issuer::pki::SignerChain;
use pki_issuer::signers::cfssl::{leaf_der, parse_info_response, parse_sign_response};
use pki_issuer::signers::load::check_profile_expiry;
use pki_issuer::signers::SignerError;
use serde_json::Value;

const URL: &str = "http://ca.test:8888/api/v1/cfssl/sign";

/// The target.
pub fn run(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let code = 100 + u16::from_be_bytes([data[0], data[1]]) % 500;
    let status = StatusCode::from_u16(code).expect("100..=599 is a status");
    let body = &data[2..];
    // Lossy: serde_json does not check UTF-8 inside fields it skips, so an accepted answer may
    // hold invalid UTF-8 there (harmless); the fields we read are valid strings.
    let value: Option<Value> = serde_json::from_str(&String::from_utf8_lossy(body)).ok();

    let sign = parse_sign_response(URL, status, body);
    check_common(status, body, value.as_ref(), sign.as_ref().err());
    if let Ok(cert) = &sign {
        let v = value.as_ref().expect("accepted body is JSON");
        assert_eq!(v["success"], Value::Bool(true), "accepted without success");
        assert_eq!(v["result"]["certificate"].as_str(), Some(cert.as_str()));
        if let Ok(der) = leaf_der(cert) {
            let again = pem::encode(&pem::Pem::new("CERTIFICATE", der.clone()));
            assert_eq!(leaf_der(&again), Ok(der), "leaf PEM round trip");
        }
    }

    let info = parse_info_response(URL, status, body);
    check_common(status, body, value.as_ref(), info.as_ref().err());
    if let Ok(info) = info {
        let v = value.as_ref().expect("accepted body is JSON");
        assert_eq!(v["success"], Value::Bool(true), "accepted without success");
        assert_eq!(
            v["result"]["certificate"].as_str(),
            Some(info.certificate.as_str())
        );
        let max = std::time::Duration::from_secs(90 * 24 * 3600);
        let verdict = check_profile_expiry(&info, "workload", max);
        if let Some(expiry) = info.expiry.as_deref() {
            match duration::parse(expiry) {
                Ok(d) => {
                    // Go-duration round trip (whole seconds), and the profile guard agrees.
                    let again = duration::parse(&duration::format(d)).expect("format parses");
                    assert_eq!(again.as_secs(), d.as_secs(), "duration round trip");
                    assert_eq!(verdict.is_err(), d > max, "profile expiry guard");
                }
                Err(_) => assert!(verdict.is_ok()),
            }
        }
        let _ = SignerChain::from_pem(&info.certificate);
    }
}

/// Error class by HTTP status, and the body never echoed beyond the CA's own messages.
fn check_common(status: StatusCode, body: &[u8], value: Option<&Value>, err: Option<&SignerError>) {
    let Some(err) = err else {
        assert!(status.is_success(), "accepted with HTTP {status}");
        return;
    };
    match err {
        SignerError::Unavailable(_) => assert!(status.is_server_error(), "{status}: {err}"),
        SignerError::Refused(_) => assert!(!status.is_server_error(), "{status}: {err}"),
        SignerError::Pki(_) => panic!("parsing an answer cannot fail with a PKI error"),
    }
    let msg = err.to_string();
    let ca_messages: Vec<&str> = value
        .and_then(|v| v["errors"].as_array())
        .map(|a| a.iter().filter_map(|m| m["message"].as_str()).collect())
        .unwrap_or_default();
    let allowance: usize = ca_messages.iter().map(|m| m.len() + 40).sum();
    assert!(
        msg.len() <= 200 + URL.len() + allowance,
        "error message longer than the CA's own messages allow ({} bytes)",
        msg.len()
    );
    // Anything the server sent that is not one of its error messages stays out of the message.
    let text = String::from_utf8_lossy(body);
    let probe: String = text.trim().chars().take(24).collect();
    if probe.chars().count() == 24
        && !ca_messages.iter().any(|m| m.contains(&probe))
        && !URL.contains(&probe)
    {
        assert!(!msg.contains(&probe), "raw response body echoed: {msg}");
    }
}
