//! The signer names of pki-issuer's issuers, as Kubernetes CertificateSigningRequests,
//! PodCertificateRequests and ClusterTrustBundles carry them:
//! `pkiclusterissuers.pki-issuer.io/<name>` and `pkiissuers.pki-issuer.io/<namespace>.<name>`.
//! One mapping both ways, so what is published and what is signed can never disagree.

use super::issuer::{IssuerKey, IssuerKind};

/// Signer-name domain of `PKIClusterIssuer`s.
pub const CLUSTER_DOMAIN: &str = "pkiclusterissuers.pki-issuer.io";
/// Signer-name domain of `PKIIssuer`s.
pub const NAMESPACED_DOMAIN: &str = "pkiissuers.pki-issuer.io";

impl IssuerKey {
    /// The issuer a signerName refers to, when it is one of ours.
    pub fn from_signer_name(signer_name: &str) -> Option<IssuerKey> {
        let (domain, rest) = signer_name.split_once('/')?;
        match domain {
            CLUSTER_DOMAIN if !rest.is_empty() && !rest.contains('/') => Some(IssuerKey {
                kind: IssuerKind::Cluster,
                namespace: None,
                name: rest.to_string(),
            }),
            NAMESPACED_DOMAIN => {
                let (ns, name) = rest.split_once('.')?;
                (!ns.is_empty() && !name.is_empty() && !name.contains('/')).then(|| IssuerKey {
                    kind: IssuerKind::Namespaced,
                    namespace: Some(ns.to_string()),
                    name: name.to_string(),
                })
            }
            _ => None,
        }
    }

    /// This issuer's signer name.
    pub fn signer_name(&self) -> String {
        match (&self.kind, &self.namespace) {
            (IssuerKind::Namespaced, Some(ns)) => format!("{NAMESPACED_DOMAIN}/{ns}.{}", self.name),
            _ => format!("{CLUSTER_DOMAIN}/{}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: IssuerKind, ns: Option<&str>, name: &str) -> IssuerKey {
        IssuerKey {
            kind,
            namespace: ns.map(str::to_string),
            name: name.into(),
        }
    }

    #[test]
    fn both_forms_parse_and_round_trip() {
        let cluster = key(IssuerKind::Cluster, None, "mesh");
        let namespaced = key(IssuerKind::Namespaced, Some("apps"), "web-ca");
        assert_eq!(
            cluster.signer_name(),
            "pkiclusterissuers.pki-issuer.io/mesh"
        );
        assert_eq!(
            namespaced.signer_name(),
            "pkiissuers.pki-issuer.io/apps.web-ca"
        );
        for k in [cluster, namespaced] {
            assert_eq!(IssuerKey::from_signer_name(&k.signer_name()), Some(k));
        }
    }

    #[test]
    fn other_signer_names_are_not_ours() {
        for other in [
            "kubernetes.io/kube-apiserver-client",
            "pkiissuers.pki-issuer.io/noname",
            "pkiissuers.pki-issuer.io/.name",
            "pkiissuers.pki-issuer.io/ns./x",
            "issuers.cert-manager.io/a.b",
            "pkiclusterissuers.pki-issuer.io/",
            "pkiclusterissuers.pki-issuer.io/a/b",
        ] {
            assert!(IssuerKey::from_signer_name(other).is_none(), "{other}");
        }
    }
}
