//! [`ObjectSource`] over the Kubernetes API.

use std::collections::BTreeMap;

use futures::FutureExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};

use crate::signers::load::{LoadError, ObjectSource, ReadResult};

/// Reads Secrets and ConfigMaps of one namespace.
pub struct KubeSource {
    namespace: String,
    secrets: Api<Secret>,
    config_maps: Api<ConfigMap>,
}

impl KubeSource {
    /// A source for `namespace`.
    pub fn new(client: Client, namespace: &str) -> Self {
        KubeSource {
            namespace: namespace.to_string(),
            secrets: Api::namespaced(client.clone(), namespace),
            config_maps: Api::namespaced(client, namespace),
        }
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
}
