//! Command-line flags; each also reads an environment variable.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use crate::issuance::remote_slots::Limits;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// pki-issuer: signs cert-manager requests with an intermediate CA rooted in your PKI.
#[derive(Parser, Debug, Clone)]
#[command(name = "pki-issuer", version, about)]
pub struct Args {
    /// Namespace PKIClusterIssuers read their Secrets and ConfigMaps from (default: the pod's namespace).
    #[arg(long, env = "PKI_ISSUER_CLUSTER_RESOURCE_NAMESPACE")]
    pub cluster_resource_namespace: Option<String>,
    /// How long retryable errors are retried before a request is marked Failed (Go duration).
    #[arg(long, env = "PKI_ISSUER_MAX_RETRY_DURATION", default_value = "10m")]
    pub max_retry_duration: String,
    /// Elect a leader through a Lease so only one replica reconciles.
    #[arg(long, env = "PKI_ISSUER_LEADER_ELECT", default_value_t = false)]
    pub leader_elect: bool,
    /// Namespace of the leader-election Lease (default: the cluster resource namespace).
    #[arg(long, env = "PKI_ISSUER_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Address of the Prometheus endpoint (`/metrics`).
    #[arg(long, env = "PKI_ISSUER_METRICS_ADDR", default_value = ":8080")]
    pub metrics_addr: String,
    /// Address of the health probes (`/healthz`, `/readyz`).
    #[arg(long, env = "PKI_ISSUER_PROBE_ADDR", default_value = ":8081")]
    pub probe_addr: String,
    /// Log format.
    #[arg(
        long,
        env = "PKI_ISSUER_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    pub log_format: LogFormat,
    /// Path to a kubeconfig; in cluster, leave unset to use the ServiceAccount.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Namespaces whose Secrets and ConfigMaps are watched (comma-separated); empty watches
    /// all namespaces. Set it to the cluster resource namespace plus the namespaces of
    /// PKIIssuers to keep Secret read access namespaced.
    #[arg(long, env = "PKI_ISSUER_WATCH_NAMESPACES", value_delimiter = ',')]
    pub watch_namespaces: Vec<String>,
    /// Requests reconciled in parallel (per request kind); at least 2.
    #[arg(long, env = "PKI_ISSUER_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// Remote CA URLs (CFSSL `url`, Vault `server`) that namespaced PKIIssuers may use,
    /// comma-separated `scheme://host[:port][/path-prefix]`; compared parsed (scheme, host,
    /// port, whole path segments). Empty: PKIIssuers may use no remote CA. PKIClusterIssuers
    /// are trusted and not limited.
    #[arg(long, env = "PKI_ISSUER_ALLOWED_REMOTE_CA_URLS", value_delimiter = ',')]
    pub allowed_remote_ca_urls: Vec<String>,
    /// Remote CA calls one issuer may have in flight; further requests of that issuer wait
    /// (Pending) instead of holding workers, so a slow CA cannot stall other issuers.
    #[arg(long, env = "PKI_ISSUER_REMOTE_CALLS_PER_ISSUER", default_value_t = 4)]
    pub remote_calls_per_issuer: u16,
    /// Remote CA calls in flight to one CA endpoint (scheme, host, port) from all issuers
    /// together; further requests wait (Pending), so a hanging CA shared by many issuers holds
    /// at most this many workers.
    #[arg(
        long,
        env = "PKI_ISSUER_REMOTE_CALLS_PER_ENDPOINT",
        default_value_t = 4
    )]
    pub remote_calls_per_endpoint: u16,
    /// Remote CA calls in flight in total, below `--concurrency`: the rest of the workers are
    /// always free for everything else. 0: half of `--concurrency`.
    #[arg(long, env = "PKI_ISSUER_REMOTE_CALLS_TOTAL", default_value_t = 0)]
    pub remote_calls_total: u16,
    /// PKCS#11 modules (absolute paths of shared libraries, comma-separated, compared
    /// exactly) that `pkcs11` issuers may load. Empty: no issuer may use a PKCS#11 token.
    #[arg(long, env = "PKI_ISSUER_ALLOWED_PKCS11_MODULES", value_delimiter = ',')]
    pub allowed_pkcs11_modules: Vec<String>,
    /// Let namespaced PKIIssuers use the allowed PKCS#11 modules too (default: only
    /// PKIClusterIssuers).
    #[arg(
        long,
        env = "PKI_ISSUER_ALLOW_NAMESPACED_PKCS11",
        default_value_t = false
    )]
    pub allow_namespaced_pkcs11: bool,
}

impl Args {
    /// The remote CA call limits; `--remote-calls-total` must leave at least one worker of
    /// `--concurrency` free.
    pub fn remote_limits(&self) -> Result<Limits, super::RuntimeError> {
        let concurrency = usize::from(self.concurrency);
        if concurrency < 2 {
            return Err(super::RuntimeError::Flag(
                "--concurrency must be at least 2: one worker always stays free of remote CA calls"
                    .into(),
            ));
        }
        let total = match usize::from(self.remote_calls_total) {
            0 => concurrency / 2,
            n => n,
        };
        if total >= concurrency {
            return Err(super::RuntimeError::Flag(format!(
                "--remote-calls-total {total} must be below --concurrency {concurrency}, so workers stay free for issuers that do not wait on a remote CA"
            )));
        }
        Ok(Limits {
            per_issuer: usize::from(self.remote_calls_per_issuer).max(1),
            per_endpoint: usize::from(self.remote_calls_per_endpoint).max(1),
            total,
        })
    }
}

/// Turn `:8080` into `0.0.0.0:8080`; keep full addresses.
pub fn bind_addr(addr: &str) -> Result<std::net::SocketAddr, super::RuntimeError> {
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    full.parse().map_err(|_| {
        super::RuntimeError::Flag(format!("{addr:?} is not a listen address such as :8080"))
    })
}

/// The pod's namespace (in cluster), from the ServiceAccount mount.
pub fn pod_namespace() -> Option<String> {
    std::env::var("POD_NAMESPACE").ok().or_else(|| {
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            .ok()
            .map(|s| s.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags_and_addresses() {
        let a = Args::try_parse_from([
            "pki-issuer",
            "--kubeconfig",
            "/tmp/k",
            "--cluster-resource-namespace",
            "pki",
            "--log-format",
            "text",
        ])
        .unwrap();
        assert_eq!(a.cluster_resource_namespace.as_deref(), Some("pki"));
        assert_eq!(a.log_format, LogFormat::Text);
        assert_eq!(a.max_retry_duration, "10m");
        assert_eq!(bind_addr(":8080").unwrap().to_string(), "0.0.0.0:8080");
        assert_eq!(bind_addr("127.0.0.1:0").unwrap().port(), 0);
        assert!(bind_addr("nope").is_err());
        assert!(a.allowed_remote_ca_urls.is_empty());
        assert_eq!(a.remote_calls_per_issuer, 4);
        assert_eq!(
            a.remote_limits().unwrap(),
            Limits {
                per_issuer: 4,
                per_endpoint: 4,
                total: 8
            },
            "half of the 16 workers at most wait on remote CAs"
        );
        let a = Args::try_parse_from([
            "pki-issuer",
            "--allowed-remote-ca-urls=https://vault.example.com:8200,http://cfssl:8888/",
        ])
        .unwrap();
        assert_eq!(a.allowed_remote_ca_urls.len(), 2);
    }

    #[test]
    fn remote_calls_leave_workers_free() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["pki-issuer"];
            argv.extend_from_slice(extra);
            Args::try_parse_from(argv).unwrap().remote_limits()
        };
        assert_eq!(parse(&["--concurrency=2"]).unwrap().total, 1);
        assert_eq!(
            parse(&["--concurrency=10", "--remote-calls-total=9"])
                .unwrap()
                .total,
            9
        );
        for bad in [
            &["--concurrency=1"][..],
            &["--concurrency=0"],
            &["--concurrency=8", "--remote-calls-total=8"],
            &["--remote-calls-total=20"],
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("--concurrency"), "{bad:?}: {e}");
        }
        let l = parse(&[
            "--remote-calls-per-endpoint=0",
            "--remote-calls-per-issuer=0",
        ])
        .unwrap();
        assert_eq!((l.per_issuer, l.per_endpoint), (1, 1));
    }
}
