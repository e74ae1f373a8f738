//! `PKIIssuer` and `PKIClusterIssuer`: one spec, two scopes.

use kube::core::Resource;
use kube::CustomResource;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::bounds::{
    MAX_EXTENSION_URLS, MAX_KEY_ALGORITHMS, MAX_POLICY_ENTRIES, MAX_POLICY_USAGES,
};

use super::condition::{self, Condition};

const ONE_SIGNER_RULE: &str =
    "[has(self.secret), has(self.cfssl), has(self.vault), has(self.pkcs11)].filter(x, x).size() == 1";
const ONE_SIGNER_MESSAGE: &str = "exactly one signer must be set: secret, cfssl, vault or pkcs11";

/// The shared spec of both issuer kinds.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerSpec {
    /// Sign with an intermediate CA held in a Secret (`tls.crt`: signer first, then
    /// further intermediates; `tls.key`: PKCS#8, PKCS#1 or SEC1 PEM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretSignerSpec>,
    /// Sign through a remote CFSSL CA (`sign` / `authsign` API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cfssl: Option<CfsslSignerSpec>,
    /// Sign through a remote Vault or OpenBao PKI secrets engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<super::vault::VaultSignerSpec>,
    /// Sign with a key held in a PKCS#11 token (an HSM); the chain from a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs11: Option<super::pkcs11::Pkcs11SignerSpec>,
    /// The existing PKI's root certificate(s). Several are allowed during a root rollover.
    pub trust_anchors: TrustAnchorsSpec,
    /// Which certificates this issuer may sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySpec>,
    /// Extensions copied into every leaf; a remote CA's leaf may carry no other CRL or AIA URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extensions: Option<ExtensionsSpec>,
    /// How often the signer is re-checked (Go duration, default `5m`, at least `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "duration(self) >= duration('30s')", "message": "healthCheckInterval must be at least 30s"}]))]
    pub health_check_interval: Option<String>,
    /// Publish the trust anchors to workloads (ClusterTrustBundle, namespace ConfigMaps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_distribution: Option<super::trust_distribution::TrustDistributionSpec>,
    /// How a pod's identity becomes the names of its certificate, for Kubernetes
    /// PodCertificateRequests; without it the issuer denies them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_certificates: Option<super::pod_certificates::PodCertificatesSpec>,
}

/// An intermediate CA held in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretSignerSpec {
    /// Name of a `kubernetes.io/tls`-shaped Secret (`tls.crt`, `tls.key`).
    #[schemars(length(min = 1))]
    pub name: String,
}

/// A remote CFSSL CA.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CfsslSignerSpec {
    /// Base URL, e.g. `https://cfssl.pki.svc:8888`. No user information (`user:password@`):
    /// credentials go in `authKey`.
    #[schemars(regex(pattern = r"^https?://[^/?#@]+(/[^@]*)?$"))]
    pub url: String,
    /// The CFSSL signing profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The CFSSL signer label (multirootca).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Hex HMAC key for `authsign`; omit to use the unauthenticated `sign` endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_key: Option<KeyRef>,
    /// Trust for HTTPS to the CA (PEM), from a ConfigMap or Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<PemSource>,
    /// Secret (`tls.crt`, `tls.key`) with a client certificate for mTLS to the CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert_secret: Option<String>,
    /// Per-request timeout (Go duration, default `10s`, at most `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "duration(self) <= duration('60s')", "message": "timeout must be at most 60s"}]))]
    pub timeout: Option<String>,
    /// Further intermediates (PEM) between the CFSSL signer and the trust anchors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intermediates: Option<PemSource>,
}

/// A key of a Secret or ConfigMap in the issuer's resource namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyRef {
    /// Object name.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Key within `data`.
    #[schemars(length(min = 1))]
    pub key: String,
}

/// PEM data from exactly one of a ConfigMap or a Secret key.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("[has(self.configMap), has(self.secret)].filter(x, x).size() == 1").message("exactly one of configMap or secret must be set"))]
pub struct PemSource {
    /// A ConfigMap key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<KeyRef>,
    /// A Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<KeyRef>,
}

/// Where the trust anchors come from.
pub type TrustAnchorsSpec = PemSource;

/// Policy: what this issuer may sign. A SAN type (`dnsNames`, `uris`, `ipRanges`,
/// `emailAddresses`) is allowed only when listed: omitted or `[]` means none of that type.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicySpec {
    /// Longest lifetime issued (Go duration; default `2160h`, 90 days). Longer requests are clamped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub max_duration: Option<String>,
    /// Shortest lifetime accepted (Go duration). Shorter requests are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub min_duration: Option<String>,
    /// Allowed DNS SANs. `*` is one label; `{namespace}` and `{serviceAccount}` are substituted.
    /// Omitted or empty: no DNS SAN is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_POLICY_ENTRIES), inner(length(max = 253)))]
    pub dns_names: Option<Vec<String>>,
    /// Allowed URI SANs (e.g. SPIFFE IDs). `*` is one path segment. Omitted or empty: no URI
    /// SAN is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_POLICY_ENTRIES), inner(length(max = 1024)))]
    pub uris: Option<Vec<String>>,
    /// CIDRs that IP SANs must fall in. Omitted or empty: no IP SAN is allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_POLICY_ENTRIES), inner(length(max = 43)))]
    pub ip_ranges: Option<Vec<String>>,
    /// Allowed email SANs (`*` is one label of the domain). Omitted or empty: no email SAN is
    /// allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_POLICY_ENTRIES), inner(length(max = 320)))]
    pub email_addresses: Option<Vec<String>>,
    /// Allowed key usages (cert-manager spellings). Default: `digital signature`,
    /// `key encipherment`, `server auth`, `client auth`. `cert sign` / `crl sign` only ever
    /// on CA certificates; a certificate without extended key usage only when `any` is listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_POLICY_USAGES), inner(length(max = 64)))]
    pub usages: Option<Vec<String>>,
    /// Whether wildcard DNS names (`*.example.com`) may be requested (default false). Without
    /// it, a `*` in `dnsNames` matches any one label but never a wildcard certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_wildcard_names: Option<bool>,
    /// Whether CA certificates may be requested (default false). An issued CA has pathLen 0
    /// and name constraints derived from this policy (types it does not list are excluded).
    #[serde(default, rename = "allowCA", skip_serializing_if = "Option::is_none")]
    pub allow_ca: Option<bool>,
    /// Allowed key algorithms (default: ECDSA >= 256, RSA >= 2048, Ed25519).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = MAX_KEY_ALGORITHMS))]
    pub key_algorithms: Option<Vec<KeyAlgorithmRule>>,
    /// Refuse requests without any SAN (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_subject_alt_name: Option<bool>,
}

/// One allowed key algorithm.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyAlgorithmRule {
    /// The algorithm.
    pub algorithm: KeyAlgorithmName,
    /// Minimum size in bits (RSA modulus, ECDSA curve).
    // `int32`, not schemars' `uint32`: kube-apiserver warns about formats it does not know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub min_size: Option<u32>,
}

/// Key algorithm names as cert-manager spells them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum KeyAlgorithmName {
    /// RSA.
    #[serde(rename = "RSA")]
    Rsa,
    /// ECDSA on P-256, P-384 or P-521.
    #[serde(rename = "ECDSA")]
    Ecdsa,
    /// Ed25519.
    Ed25519,
}

/// Extensions copied into every leaf.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionsSpec {
    /// CRL distribution point URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_EXTENSION_URLS), inner(length(max = 2048)))]
    pub crl_distribution_points: Vec<String>,
    /// OCSP responder URLs (Authority Information Access).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_EXTENSION_URLS), inner(length(max = 2048)))]
    pub ocsp_servers: Vec<String>,
    /// CA issuer URLs (Authority Information Access).
    #[serde(
        default,
        rename = "issuingCertificateURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schemars(length(max = MAX_EXTENSION_URLS), inner(length(max = 2048)))]
    pub issuing_certificate_urls: Vec<String>,
}

/// Observed state of an issuer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerStatus {
    /// `Ready` with reason `Checked`, `Pending` or `Failed`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// The signing certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<CertSummary>,
    /// The trust anchors in use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trust_anchors: Vec<CertSummary>,
}

/// A short description of a certificate.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertSummary {
    /// Subject DN.
    pub subject: String,
    /// Serial number, hex.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serial_number: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256_fingerprint: String,
}

macro_rules! issuer_kind {
    ($spec:ident, $kind:literal, $plural:literal, $short:literal, $doc:literal, $($scope:ident)?) => {
        /// The issuer's signer, trust anchors and policy (see [`IssuerSpec`]).
        #[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
        #[kube(
            group = "pki-issuer.io",
            version = "v1alpha1",
            kind = $kind,
            plural = $plural,
            shortname = $short,
            category = "pki-issuer",
            doc = $doc,
            status = "IssuerStatus",
            derive = "PartialEq",
            derive = "Default",
            $($scope,)?
            printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
            printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
            printcolumn = r#"{"name":"Signer NotAfter","type":"string","jsonPath":".status.signer.notAfter"}"#,
            printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
        )]
        #[x_kube(validation = Rule::new(ONE_SIGNER_RULE).message(ONE_SIGNER_MESSAGE))]
        pub struct $spec {
            #[serde(flatten)]
            #[allow(missing_docs)]
            pub inner: IssuerSpec,
        }

        impl std::ops::Deref for $spec {
            type Target = IssuerSpec;
            fn deref(&self) -> &IssuerSpec {
                &self.inner
            }
        }
    };
}

issuer_kind!(
    PKIIssuerSpec,
    "PKIIssuer",
    "pkiissuers",
    "pkiiss",
    "Signs cert-manager requests of its own namespace with an intermediate CA rooted in an existing PKI.",
    namespaced
);
issuer_kind!(
    PKIClusterIssuerSpec,
    "PKIClusterIssuer",
    "pkiclusterissuers",
    "pkiciss",
    "Signs cert-manager requests of any namespace with an intermediate CA rooted in an existing PKI.",
);

/// Which of the two issuer kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IssuerKind {
    /// Namespaced `PKIIssuer`.
    Namespaced,
    /// Cluster-scoped `PKIClusterIssuer`.
    Cluster,
}

impl IssuerKind {
    /// The `kind` string.
    pub fn as_str(self) -> &'static str {
        match self {
            IssuerKind::Namespaced => "PKIIssuer",
            IssuerKind::Cluster => "PKIClusterIssuer",
        }
    }

    /// Parse a cert-manager `issuerRef.kind` (empty means `PKIIssuer`).
    pub fn from_ref_kind(kind: Option<&str>) -> Option<IssuerKind> {
        match kind.unwrap_or("") {
            "" | "PKIIssuer" => Some(IssuerKind::Namespaced),
            "PKIClusterIssuer" => Some(IssuerKind::Cluster),
            _ => None,
        }
    }
}

/// Identifies one issuer: kind, namespace (namespaced kind only) and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IssuerKey {
    /// The kind.
    pub kind: IssuerKind,
    /// Namespace for `PKIIssuer`, `None` for `PKIClusterIssuer`.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl std::fmt::Display for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind.as_str(), ns, self.name),
            None => write!(f, "{} {}", self.kind.as_str(), self.name),
        }
    }
}

/// What both kinds have in common, for code that handles either.
pub trait AnyIssuer: Resource + Clone + Send + Sync + 'static {
    /// The kind.
    const KIND: IssuerKind;
    /// The shared spec.
    fn issuer_spec(&self) -> &IssuerSpec;
    /// The status, if any.
    fn issuer_status(&self) -> Option<&IssuerStatus>;
    /// An API handle for objects of this kind in `namespace` (ignored for cluster issuers).
    fn api(client: kube::Client, namespace: Option<&str>) -> kube::Api<Self>;
    /// This issuer's key.
    fn key(&self) -> IssuerKey {
        IssuerKey {
            kind: Self::KIND,
            namespace: self.meta().namespace.clone(),
            name: self.meta().name.clone().unwrap_or_default(),
        }
    }
    /// Whether the issuer is Ready for its current generation.
    fn is_ready(&self) -> bool {
        let Some(status) = self.issuer_status() else {
            return false;
        };
        condition::find(&status.conditions, "Ready").is_some_and(|c| {
            c.is_true()
                && c.observed_generation.is_some()
                && c.observed_generation == self.meta().generation
        })
    }
}

impl AnyIssuer for PKIIssuer {
    const KIND: IssuerKind = IssuerKind::Namespaced;
    fn api(client: kube::Client, namespace: Option<&str>) -> kube::Api<Self> {
        match namespace {
            Some(ns) => kube::Api::namespaced(client, ns),
            None => kube::Api::all(client),
        }
    }
    fn issuer_spec(&self) -> &IssuerSpec {
        &self.spec.inner
    }
    fn issuer_status(&self) -> Option<&IssuerStatus> {
        self.status.as_ref()
    }
}

impl AnyIssuer for PKIClusterIssuer {
    const KIND: IssuerKind = IssuerKind::Cluster;
    fn api(client: kube::Client, _namespace: Option<&str>) -> kube::Api<Self> {
        kube::Api::all(client)
    }
    fn issuer_spec(&self) -> &IssuerSpec {
        &self.spec.inner
    }
    fn issuer_status(&self) -> Option<&IssuerStatus> {
        self.status.as_ref()
    }
}
