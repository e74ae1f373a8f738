//! The Secrets and ConfigMaps an issuer reads, declared by each spec type next to its fields, so
//! the issuer is re-checked when one of them changes and a new backend declares its own.

use super::issuer::{CfsslSignerSpec, IssuerSpec, PemSource, SecretSignerSpec};

/// One object an issuer reads, in its resource namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Referenced {
    /// A Secret by name.
    Secret(String),
    /// A ConfigMap by name.
    ConfigMap(String),
}

/// A spec part that reads Secrets or ConfigMaps.
pub trait References {
    /// Append what it reads.
    fn references(&self, out: &mut Vec<Referenced>);
}

impl<T: References> References for Option<T> {
    fn references(&self, out: &mut Vec<Referenced>) {
        if let Some(t) = self {
            t.references(out);
        }
    }
}

impl References for PemSource {
    fn references(&self, out: &mut Vec<Referenced>) {
        if let Some(r) = &self.secret {
            out.push(Referenced::Secret(r.name.clone()));
        }
        if let Some(r) = &self.config_map {
            out.push(Referenced::ConfigMap(r.name.clone()));
        }
    }
}

impl References for SecretSignerSpec {
    fn references(&self, out: &mut Vec<Referenced>) {
        out.push(Referenced::Secret(self.name.clone()));
    }
}

impl References for CfsslSignerSpec {
    fn references(&self, out: &mut Vec<Referenced>) {
        self.ca_bundle.references(out);
        self.intermediates.references(out);
        if let Some(k) = &self.auth_key {
            out.push(Referenced::Secret(k.name.clone()));
        }
        if let Some(name) = &self.client_cert_secret {
            out.push(Referenced::Secret(name.clone()));
        }
    }
}

impl IssuerSpec {
    /// Every Secret and ConfigMap the issuer check reads.
    pub fn references(&self) -> Vec<Referenced> {
        let mut out = Vec::new();
        self.trust_anchors.references(&mut out);
        self.secret.references(&mut out);
        self.cfssl.references(&mut out);
        self.vault.references(&mut out);
        self.pkcs11.references(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::issuer::KeyRef;

    fn key(name: &str) -> KeyRef {
        KeyRef {
            name: name.into(),
            key: "k".into(),
        }
    }

    #[test]
    fn every_backend_declares_what_it_reads() {
        let spec = IssuerSpec {
            secret: Some(SecretSignerSpec { name: "int".into() }),
            trust_anchors: PemSource {
                config_map: Some(key("roots")),
                secret: None,
            },
            ..Default::default()
        };
        assert_eq!(
            spec.references(),
            vec![
                Referenced::ConfigMap("roots".into()),
                Referenced::Secret("int".into())
            ]
        );
        let vault: crate::api::vault::VaultSignerSpec = serde_json::from_value(serde_json::json!({
            "server": "https://v", "path": "pki/sign/r",
            "caBundleSecretRef": {"name": "ca", "key": "k"},
            "clientCertSecretRef": {"name": "crt", "key": "k"},
            "clientKeySecretRef": {"name": "key", "key": "k"},
            "auth": {"appRole": {"path": "approle", "roleId": "r", "secretRef": {"name": "approle", "key": "k"}}},
        }))
        .unwrap();
        let mut out = vec![];
        vault.references(&mut out);
        let names: Vec<_> = out.iter().map(|r| format!("{r:?}")).collect();
        assert_eq!(
            names,
            [
                "Secret(\"ca\")",
                "Secret(\"crt\")",
                "Secret(\"key\")",
                "Secret(\"approle\")"
            ]
        );
        let cfssl: CfsslSignerSpec = serde_json::from_value(serde_json::json!({
            "url": "https://c", "caBundle": {"configMap": {"name": "bundle", "key": "k"}},
            "authKey": {"name": "auth", "key": "k"}, "clientCertSecret": "mtls",
        }))
        .unwrap();
        let mut out = vec![];
        cfssl.references(&mut out);
        assert_eq!(
            out,
            vec![
                Referenced::ConfigMap("bundle".into()),
                Referenced::Secret("auth".into()),
                Referenced::Secret("mtls".into())
            ]
        );
    }
}
