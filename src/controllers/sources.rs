//! [`ObjectSource`] over the Kubernetes API.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::signers::load::{LoadError, ObjectSource, ReadResult};
use crate::signers::vault::auth::ServiceAccountTokens;
use crate::signers::vault::response::Token;

/// Reads Secrets and ConfigMaps of one namespace.
pub struct KubeSource {
    namespace: String,
    secrets: Api<Secret>,
    config_maps: Api<ConfigMap>,
    tokens: Arc<KubeTokens>,
}

impl KubeSource {
    /// A source for `namespace`.
    pub fn new(client: Client, namespace: &str) -> Self {
        KubeSource {
            namespace: namespace.to_string(),
            secrets: Api::namespaced(client.clone(), namespace),
            config_maps: Api::namespaced(client.clone(), namespace),
            tokens: Arc::new(KubeTokens {
                namespace: namespace.to_string(),
                service_accounts: Api::namespaced(client, namespace),
            }),
        }
    }
}

/// Bound ServiceAccount tokens from the TokenRequest API (`serviceaccounts/token`).
pub struct KubeTokens {
    namespace: String,
    service_accounts: Api<ServiceAccount>,
}

impl ServiceAccountTokens for KubeTokens {
    fn token<'a>(
        &'a self,
        name: &'a str,
        audiences: &'a [String],
        seconds: i64,
    ) -> BoxFuture<'a, Result<Token, String>> {
        async move {
            crate::api::check_object_name("ServiceAccount", name)?;
            let req = TokenRequest {
                spec: Some(TokenRequestSpec {
                    audiences: Some(audiences.to_vec()),
                    expiration_seconds: Some(seconds),
                    bound_object_ref: None,
                }),
                ..Default::default()
            };
            let resp = self
                .service_accounts
                .create_token_request(name, &PostParams::default(), &req)
                .await
                .map_err(|e| {
                    format!(
                        "requesting a token for ServiceAccount {}/{name}: {e}",
                        self.namespace
                    )
                })?;
            resp.status
                .and_then(|s| s.token)
                .map(|t| Token(t.into()))
                .filter(|t| !t.0.is_empty())
                .ok_or_else(|| {
                    format!(
                        "the TokenRequest for ServiceAccount {}/{name} returned no token",
                        self.namespace
                    )
                })
        }
        .boxed()
    }
}

fn api_error(kind: &str, ns: &str, name: &str, e: kube::Error) -> LoadError {
    LoadError::Unavailable(format!("reading {kind} {ns}/{name}: {e}"))
}

impl ObjectSource for KubeSource {
    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn secret(&self, name: &str) -> ReadResult<'_> {
        let name = name.to_string();
        async move {
            crate::api::check_object_name("Secret", &name).map_err(LoadError::Invalid)?;
            let secret = self
                .secrets
                .get_opt(&name)
                .await
                .map_err(|e| api_error("Secret", &self.namespace, &name, e))?;
            Ok(secret.map(|s| {
                s.data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect()
            }))
        }
        .boxed()
    }

    fn config_map(&self, name: &str) -> ReadResult<'_> {
        let name = name.to_string();
        async move {
            crate::api::check_object_name("ConfigMap", &name).map_err(LoadError::Invalid)?;
            let cm = self
                .config_maps
                .get_opt(&name)
                .await
                .map_err(|e| api_error("ConfigMap", &self.namespace, &name, e))?;
            Ok(cm.map(|cm| {
                let mut out: BTreeMap<String, Vec<u8>> = cm
                    .binary_data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                out.extend(
                    cm.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.into_bytes())),
                );
                out
            }))
        }
        .boxed()
    }

    fn service_account_tokens(&self) -> Option<Arc<dyn ServiceAccountTokens>> {
        Some(self.tokens.clone())
    }
}
