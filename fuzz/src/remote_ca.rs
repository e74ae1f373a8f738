//! Target `remote_ca_response`: every remote CA answer parser — CFSSL (`sign`/`authsign`,
//! `info`) and Vault/OpenBao (`sign`, login, role, `ca_chain`, health, error documents) — plus
//! what the loader does with a CFSSL `info` answer (profile expiry, signer PEM).
//!
//! Input: two bytes of HTTP status (big endian, folded into 100..=599), then the body. Every
//! parser sees every input, so CFSSL and Vault answers both seed all of them.

use pki_issuer::api::duration;
use pki_issuer::pki::SignerChain;
use pki_issuer::signers::cfssl;
use pki_issuer::signers::load::check_profile_expiry;
use pki_issuer::signers::remote::clean_message;
use pki_issuer::signers::vault::response as vault;
use pki_issuer::signers::vault::response::VaultError;
use pki_issuer::signers::SignerError;
use serde_json::Value;

/// The target.
pub fn run(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let status = 100 + u16::from_be_bytes([data[0], data[1]]) % 500;
    let body = &data[2..];
    // Lossy: serde_json does not check UTF-8 inside fields it skips, so an accepted answer may
    // hold invalid UTF-8 there (harmless); the fields the parsers read are valid strings.
    let value: Option<Value> = serde_json::from_str(&String::from_utf8_lossy(body)).ok();
    let ok_status = (200..300).contains(&status);
    let retryable = status >= 500 || status == 429;
    let allowed = ca_messages(value.as_ref());

    // CFSSL.
    let sign = cfssl::parse_sign_response(status, body);
    if let Err(e) = &sign {
        check_cfssl_error(status, e);
        check_no_echo(body, &e.to_string(), &allowed);
    }
    if let Ok(der) = &sign {
        assert!(ok_status, "CFSSL sign accepted with HTTP {status}");
        let v = value.as_ref().expect("accepted CFSSL answer is JSON");
        assert_eq!(v["success"], Value::Bool(true), "accepted without success");
        let cert = v["result"]["certificate"].as_str().expect("certificate");
        let blocks = pem::parse_many(cert).expect("accepted certificate is PEM");
        assert_eq!(blocks.len(), 1, "accepted {} PEM blocks", blocks.len());
        assert_eq!(blocks[0].tag(), "CERTIFICATE");
        assert_eq!(blocks[0].contents(), der.as_slice(), "leaf DER differs");
    }
    let info = cfssl::parse_info_response(status, body);
    if let Err(e) = &info {
        check_cfssl_error(status, e);
        check_no_echo(body, &e.to_string(), &allowed);
    }
    if let Ok(info) = info {
        assert!(ok_status, "CFSSL info accepted with HTTP {status}");
        let v = value.as_ref().expect("accepted CFSSL answer is JSON");
        assert_eq!(v["success"], Value::Bool(true), "accepted without success");
        assert_eq!(
            v["result"]["certificate"].as_str(),
            Some(info.certificate.as_str())
        );
        check_info(&info);
    }

    // Vault / OpenBao.
    let check_vault = |what: &str, r: Result<(), &VaultError>| match r {
        Ok(()) => assert!(ok_status, "Vault {what} accepted with HTTP {status}"),
        Err(e) => {
            match e {
                VaultError::Denied(_) => assert_eq!(status, 403, "{what}: {e}"),
                VaultError::Unavailable(_) => {
                    assert!(retryable || ok_status, "{what} {status}: {e}")
                }
                VaultError::Refused(_) => assert!(!retryable && status != 403, "{what}: {e}"),
            }
            if !ok_status {
                assert_eq!(
                    std::mem::discriminant(e),
                    std::mem::discriminant(&vault::parse_error(status, body)),
                    "{what}: a non-2xx answer is classified by parse_error"
                );
            }
            check_no_echo(body, &e.to_string(), &allowed);
        }
    };
    let signed = vault::parse_sign_response(status, body);
    check_vault("sign", signed.as_ref().map(|_| ()));
    if let Ok(s) = &signed {
        let v = value.as_ref().expect("accepted Vault answer is JSON");
        let cert = v["data"]["certificate"].as_str().expect("data.certificate");
        let blocks = pem::parse_many(cert).expect("accepted certificate is PEM");
        assert_eq!(
            blocks.len(),
            1,
            "accepted {} PEM blocks as the leaf",
            blocks.len()
        );
        assert_eq!(
            blocks[0].contents(),
            s.leaf_der.as_slice(),
            "leaf DER differs"
        );
    }
    let login = vault::parse_login_response(status, body);
    check_vault("login", login.as_ref().map(|_| ()));
    if let Ok(l) = &login {
        assert!(!l.token.0.is_empty(), "empty token accepted");
        let dbg = format!("{l:?}");
        assert!(
            l.token.0.len() < 8 || !dbg.contains(l.token.0.expose().as_str()),
            "Login Debug shows the token"
        );
    }
    let role = vault::parse_role_response(status, body);
    check_vault("role", role.as_ref().map(|_| ()));
    let chain = vault::parse_ca_chain_response(status, body);
    check_vault("ca_chain", chain.as_ref().map(|_| ()));
    if let Ok(chain) = &chain {
        // What the loader does next with a CA chain.
        let pem = pki_issuer::pki::certs_to_pem(chain);
        let _ = SignerChain::from_pem(&pem);
    }
    let _ = vault::parse_health_response(status, body);
    if !ok_status {
        check_no_echo(
            body,
            &vault::parse_error(status, body).to_string(),
            &allowed,
        );
    }
}

/// Every string under the body's `errors` (CFSSL objects' `message`, Vault's strings): the
/// only body text a message may quote.
fn ca_messages(v: Option<&Value>) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Some(e) = v.map(|v| &v["errors"]) {
        walk(e, &mut out);
    }
    out
}

fn check_cfssl_error(status: u16, e: &SignerError) {
    let retryable = status >= 500 || status == 429;
    match e {
        SignerError::Unavailable(_) => assert!(retryable, "CFSSL {status}: {e}"),
        SignerError::Refused(_) => assert!(!retryable, "CFSSL {status}: {e}"),
        SignerError::Pki(_) => panic!("parsing an answer cannot fail with a PKI error"),
        SignerError::Credentials(_) => panic!("only Vault reports refused credentials"),
        SignerError::SignerDown(_) => panic!("only an HSM token reports a signer that is down"),
    }
}

/// Text that stands for a private page the URL could point at (seeds carry it).
pub const CANARY: &str = "internal-page-canary-7f3a";

/// An error message never quotes the body beyond the CA's own (cleaned, truncated) messages:
/// bounded length, and the canary absent unless one of those messages carries it. (A probe of
/// arbitrary body text would be gamed: compare tracing teaches the fuzzer the fixed texts.)
fn check_no_echo(body: &[u8], msg: &str, allowed: &[String]) {
    assert!(
        msg.chars().count() <= 1000,
        "error message of {} characters",
        msg.chars().count()
    );
    let text = String::from_utf8_lossy(body);
    if text.contains(CANARY)
        && !allowed
            .iter()
            .any(|m| m.contains(CANARY) || clean_message(m).contains(CANARY))
    {
        assert!(!msg.contains(CANARY), "raw response body echoed: {msg}");
    }
}

fn check_info(info: &cfssl::Info) {
    let max = std::time::Duration::from_secs(90 * 24 * 3600);
    let verdict = check_profile_expiry(info, "workload", max);
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
