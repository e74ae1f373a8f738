//! Loading a CFSSL issuer: the client, its TLS and auth key, the CA's `info` and profile.

use std::time::Duration;

use super::super::cfssl::{CfsslClient, CfsslConfig, CfsslSigner, Info};
use super::super::remote::{self};
use super::super::SignerError;
use crate::api::duration;
use crate::api::issuer::CfsslSignerSpec;
use crate::pki::{Policy, SignerChain};

use super::*;

pub(super) async fn load_cfssl(
    spec: &CfsslSignerSpec,
    src: &dyn ObjectSource,
    policy: &Policy,
    observe: Option<Observer>,
) -> Result<CfsslSigner, LoadError> {
    let ns = src.namespace().to_string();
    let auth_key = match &spec.auth_key {
        Some(r) => {
            let data = src.secret(&r.name).await?.ok_or_else(|| {
                LoadError::Missing(format!("cfssl.authKey: Secret {ns}/{} not found", r.name))
            })?;
            let text = text_key(&data, &r.key, "Secret", &ns, &r.name)?;
            Some(hex::decode(text.trim()).map_err(|_| {
                LoadError::Invalid(format!(
                    "cfssl.authKey: Secret {ns}/{} key {:?} is not a hex key",
                    r.name, r.key
                ))
            })?)
        }
        None => None,
    };
    let timeout = remote_timeout("cfssl.timeout", spec.timeout.as_deref())?;
    let tls = if spec.url.starts_with("https://") {
        let Some(bundle) = &spec.ca_bundle else {
            return Err(LoadError::Invalid(
                "cfssl.caBundle is required for an https:// URL".into(),
            ));
        };
        let ca_pem = read_pem(src, bundle, "cfssl.caBundle").await?;
        let client = match &spec.client_cert_secret {
            Some(name) => {
                let data = src.secret(name).await?.ok_or_else(|| {
                    LoadError::Missing(format!(
                        "cfssl.clientCertSecret: Secret {ns}/{name} not found"
                    ))
                })?;
                Some((
                    text_key(&data, "tls.crt", "Secret", &ns, name)?,
                    text_key(&data, "tls.key", "Secret", &ns, name)?,
                ))
            }
            None => None,
        };
        Some(
            remote::tls::config(
                &ca_pem,
                client.as_ref().map(|(c, k)| remote::tls::ClientCert {
                    cert_pem: c,
                    key_pem: k,
                }),
            )
            .map_err(|e| LoadError::Invalid(format!("cfssl: {e}")))?,
        )
    } else {
        None
    };
    let client = CfsslClient::new(
        CfsslConfig {
            url: spec.url.clone(),
            profile: spec.profile.clone(),
            label: spec.label.clone(),
            auth_key: auth_key.map(crate::redacted::Redacted),
            timeout,
            tls,
        },
        observe,
    )
    .map_err(|e| LoadError::Invalid(format!("cfssl: {e}")))?;
    let info = client.info().await.map_err(|e| match e {
        SignerError::Unavailable(m) => LoadError::Unavailable(format!("CFSSL info: {m}")),
        other => LoadError::Invalid(format!(
            "CFSSL info for profile {:?}: {other}",
            spec.profile.clone().unwrap_or_default()
        )),
    })?;
    check_profile_expiry(
        &info,
        spec.profile.as_deref().unwrap_or_default(),
        policy.max_duration,
    )?;
    let mut chain_pem = info.certificate;
    if let Some(intermediates) = &spec.intermediates {
        chain_pem.push('\n');
        chain_pem.push_str(&read_pem(src, intermediates, "cfssl.intermediates").await?);
    }
    let chain = SignerChain::from_pem(&chain_pem)
        .map_err(|e| LoadError::Invalid(format!("CFSSL signer certificate: {e}")))?;
    Ok(CfsslSigner::new(client, chain))
}

/// CFSSL decides lifetimes by profile and silently falls back to its default profile for an
/// unknown name, so a profile that issues longer than `maxDuration` (a typo'd profile name,
/// typically) makes the issuer fail its check instead of every request failing later.
pub fn check_profile_expiry(info: &Info, profile: &str, max: Duration) -> Result<(), LoadError> {
    let Some(expiry) = info.expiry.as_deref().and_then(|e| duration::parse(e).ok()) else {
        return Ok(());
    };
    if expiry > max {
        return Err(LoadError::Invalid(format!(
            "CFSSL profile {profile:?} issues certificates valid for {}, longer than policy.maxDuration {}; \
             check the profile name (CFSSL uses its default profile for unknown names)",
            duration::format(expiry),
            duration::format(max)
        )));
    }
    Ok(())
}
