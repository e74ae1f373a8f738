//! `spec.pkcs11`: the intermediate CA's key in a PKCS#11 token (an HSM); the signer
//! certificate chain in a Secret. The key is only ever used inside the token.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::issuer::KeyRef;
use super::references::{Referenced, References};

/// Sign with a key held in a PKCS#11 token. The controller loads `module` only when the
/// operator allowlisted it (`--allowed-pkcs11-modules`); namespaced PKIIssuers only when the
/// operator also allowed them (`--allow-namespaced-pkcs11`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.keyLabel), has(self.keyId)].filter(x, x).size() == 1").message("exactly one of keyLabel or keyId must be set"))]
pub struct Pkcs11SignerSpec {
    /// Absolute path of the PKCS#11 module (shared library) in the controller's container,
    /// e.g. `/usr/lib/softhsm/libsofthsm2.so`. Must be listed in `--allowed-pkcs11-modules`.
    #[schemars(length(min = 2, max = 4096), regex(pattern = r"^/"))]
    pub module: String,
    /// The token's label (`CKA_LABEL` of the token, as `pkcs11-tool --list-slots` shows it).
    #[schemars(length(min = 1, max = 32))]
    pub token_label: String,
    /// The private key's `CKA_LABEL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub key_label: Option<String>,
    /// The private key's `CKA_ID`, hex (e.g. `01a2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 2, max = 256), regex(pattern = r"^([0-9a-fA-F]{2})+$"))]
    pub key_id: Option<String>,
    /// The user PIN of the token: a key of a Secret in the issuer's resource namespace.
    pub pin_secret_ref: KeyRef,
    /// The signer certificate (first) and the intermediates above it, PEM: a key of a Secret
    /// (e.g. `tls.crt`) in the issuer's resource namespace.
    pub certificate_secret_ref: KeyRef,
}

impl References for Pkcs11SignerSpec {
    fn references(&self, out: &mut Vec<Referenced>) {
        out.push(Referenced::Secret(self.pin_secret_ref.name.clone()));
        out.push(Referenced::Secret(self.certificate_secret_ref.name.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declares_both_secrets_and_parses_the_documented_shape() {
        let spec: Pkcs11SignerSpec = serde_json::from_value(serde_json::json!({
            "module": "/usr/lib/softhsm/libsofthsm2.so",
            "tokenLabel": "mesh-ca",
            "keyLabel": "int-2026",
            "pinSecretRef": {"name": "hsm-pin", "key": "pin"},
            "certificateSecretRef": {"name": "int-ca", "key": "tls.crt"},
        }))
        .unwrap();
        let mut out = vec![];
        spec.references(&mut out);
        assert_eq!(
            out,
            vec![
                Referenced::Secret("hsm-pin".into()),
                Referenced::Secret("int-ca".into())
            ]
        );
        assert_eq!(spec.key_label.as_deref(), Some("int-2026"));
        assert!(spec.key_id.is_none());
    }
}
