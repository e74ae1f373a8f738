use super::*;

#[test]
fn errors_name_vaults_messages_never_the_body() {
    let e = parse_error(400, br#"{"errors":["role requires keys of type rsa"]}"#);
    assert_eq!(
        e,
        VaultError::Refused("HTTP 400 Bad Request: role requires keys of type rsa".into())
    );
    let e = parse_error(403, br#"{"errors":["permission denied"]}"#);
    assert!(matches!(e, VaultError::Denied(m) if m.contains("permission denied")));
    let e = parse_error(502, b"<html>secret internal page</html>");
    assert!(
        matches!(&e, VaultError::Unavailable(m) if !m.contains("secret") && m.contains("HTTP 502"))
    );
    assert!(matches!(
        parse_error(429, b"{}"),
        VaultError::Unavailable(_)
    ));
    let e = parse_error(
        400,
        format!(r#"{{"errors":["a\u001b[0m{}"]}}"#, "z".repeat(999)).as_bytes(),
    );
    assert!(e.to_string().len() < 300 && !e.to_string().contains('\u{1b}'));
}

#[test]
fn sign_needs_one_certificate_in_a_vault_envelope() {
    let pem1 = pem::encode(&pem::Pem::new("CERTIFICATE", vec![1]));
    let pem2 = pem::encode(&pem::Pem::new("CERTIFICATE", vec![2]));
    let ok = serde_json::json!({"data": {"certificate": pem1, "ca_chain": [pem2]}});
    let s = parse_sign_response(200, ok.to_string().as_bytes()).unwrap();
    assert_eq!((s.leaf_der, s.ca_chain_der), (vec![1], vec![vec![2]]));
    let two = serde_json::json!({"data": {"certificate": format!("{pem1}{pem2}")}});
    assert!(parse_sign_response(200, two.to_string().as_bytes()).is_err());
    let e = parse_sign_response(200, b"<html>hello</html>").unwrap_err();
    assert!(!e.to_string().contains("hello"));
    let key = pem::encode(&pem::Pem::new("PRIVATE KEY", vec![1]));
    let k = serde_json::json!({"data": {"certificate": key}});
    assert!(parse_sign_response(200, k.to_string().as_bytes()).is_err());
}

#[test]
fn login_role_chain_and_health() {
    let l = parse_login_response(
        200,
        br#"{"auth":{"client_token":"s.abc","lease_duration":3600}}"#,
    )
    .unwrap();
    assert_eq!(l.lease, Some(Duration::from_secs(3600)));
    assert!(!format!("{l:?}").contains("s.abc"));
    assert!(parse_login_response(200, br#"{"auth":{"client_token":""}}"#).is_err());
    assert!(matches!(
        parse_login_response(400, br#"{"errors":["invalid role ID"]}"#),
        Err(VaultError::Refused(m)) if m.contains("invalid role ID")
    ));

    let r = parse_role_response(
        200,
        br#"{"data":{"key_type":"rsa","allowed_uri_sans":["spiffe://*"],"max_ttl":259200}}"#,
    )
    .unwrap();
    assert_eq!(r.key_type, "rsa");
    assert_eq!(r.max_ttl, Some(Duration::from_secs(259200)));
    assert!(r.use_csr_sans);
    let r = parse_role_response(200, br#"{"data":{"key_type":"ec","max_ttl":0}}"#).unwrap();
    assert_eq!((r.max_ttl, r.allowed_uri_sans.len()), (None, 0));

    let pem1 = pem::encode(&pem::Pem::new("CERTIFICATE", vec![1]));
    let body = serde_json::json!({"data": {"ca_chain": pem1}});
    assert_eq!(
        parse_ca_chain_response(200, body.to_string().as_bytes()).unwrap(),
        vec![vec![1]]
    );
    let empty = serde_json::json!({"data": {"ca_chain": ""}});
    assert!(parse_ca_chain_response(200, empty.to_string().as_bytes()).is_err());

    assert_eq!(
        parse_health_response(
            200,
            br#"{"initialized":true,"sealed":false,"standby":false}"#
        ),
        Health::Active
    );
    assert_eq!(
        parse_health_response(503, br#"{"sealed":true}"#),
        Health::Sealed
    );
    assert_eq!(parse_health_response(429, b"{}"), Health::Standby);
    assert_eq!(parse_health_response(501, b""), Health::Uninitialized);
    assert_eq!(parse_health_response(200, b"<html>"), Health::Unknown(200));
    assert_eq!(parse_health_response(404, b""), Health::Unknown(404));
}
