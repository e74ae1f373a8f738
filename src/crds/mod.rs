//! The generated CRD manifests: `crdgen` writes them into the chart (`helm/pki-issuer/crds/`,
//! the copy every test installs) and the kustomize base (`config/crd/bases/`).

use kube::CustomResourceExt;

use crate::api::{PKIClusterIssuer, PKIIssuer};

/// Where the generated CRDs live, relative to the repository root.
pub const DIRS: [&str; 2] = ["helm/pki-issuer/crds", "config/crd/bases"];

/// `(file name, YAML)` for every CRD we own.
pub fn all_yaml() -> Result<Vec<(String, String)>, serde_yaml::Error> {
    let header = "# Generated from src/api by `make generate`; do not edit.\n";
    Ok(vec![
        (
            "pki-issuer.io_pkiissuers.yaml".to_string(),
            format!("{header}{}", serde_yaml::to_string(&PKIIssuer::crd())?),
        ),
        (
            "pki-issuer.io_pkiclusterissuers.yaml".to_string(),
            format!(
                "{header}{}",
                serde_yaml::to_string(&PKIClusterIssuer::crd())?
            ),
        ),
    ])
}

#[cfg(test)]
mod readme;

#[cfg(test)]
mod tests {
    /// Fails when a generated CRD differs from what the Rust types generate, or a file there
    /// is not generated: run `make generate`.
    #[test]
    fn crds_are_up_to_date() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let generated = super::all_yaml().unwrap();
        for dir in super::DIRS {
            for (file, yaml) in &generated {
                let on_disk = std::fs::read_to_string(root.join(dir).join(file))
                    .unwrap_or_else(|e| panic!("{dir}/{file}: {e}; run `make generate`"));
                assert_eq!(&on_disk, yaml, "{dir}/{file} is stale; run `make generate`");
            }
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                assert!(
                    generated.iter().any(|(f, _)| *f == name),
                    "{dir}/{name} is not generated; remove it"
                );
            }
        }
    }
}
