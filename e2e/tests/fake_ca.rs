//! A small programmable CA speaking CFSSL's `info` and `sign` API over HTTP/1.1, signing with
//! a real intermediate: it can return hostile certificates (extra subject attributes, other
//! keys, extra extensions, longer lifetimes...) or hang, to prove what pki-issuer does with
//! them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rcgen::{
    CertificateSigningRequestParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::fixtures::Ca;

/// What the fake CA does to a `sign` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Sign the CSR faithfully.
    Honest,
    /// Add `O=system:masters` to the subject.
    ExtraSubjectAttribute,
    /// Put another common name in the subject.
    OtherCommonName,
    /// Add an unknown critical extension.
    UnknownCriticalExtension,
    /// Add a second basicConstraints extension.
    DuplicateBasicConstraints,
    /// Certify another public key.
    OtherKey,
    /// Issue for 30 days (more than the issuers' maxDuration).
    LongerLifetime,
    /// Add a DNS SAN nobody asked for.
    ExtraSan,
    /// Add the code-signing extended usage.
    UnrequestedEku,
    /// Never answer `sign` (answers `info`).
    Hang,
    /// Refuse `sign` with an error text naming internal details.
    ErrorText,
    /// notBefore ten years back (notAfter within the policy's maxDuration from now).
    Backdated,
    /// notBefore two hours before the request (a 3-hour lifetime, inside maxDuration).
    EarlyNotBefore,
    /// notBefore 47 hours back and notAfter 1 hour ahead: 48 hours in total, but most of it
    /// before the request.
    LongPast,
    /// An OCSP URL (authorityInfoAccess) nobody configured.
    ExtraAia,
    /// A CRL distribution point nobody configured.
    ExtraCrlDp,
    /// A signedCertificateTimestampList of made-up bytes.
    Sct,
    /// Honest, but `info` appends an unrelated CA certificate to the signer's.
    InfoExtraCerts,
}

/// The internal detail [`Mode::ErrorText`] puts into its error message.
pub const INTERNAL_DETAIL: &str = "db01.corp-internal.example:5432 password=fake-ca-s3cr3t";

/// A running fake CA.
pub struct FakeCa {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `sign` calls received and not yet answered or abandoned by the client, now and at most.
    pub calls: Arc<InFlight>,
}

/// In-flight `sign` calls of one fake CA.
#[derive(Default)]
pub struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl InFlight {
    /// The most `sign` calls that were in flight at once.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }

    fn start(self: &Arc<Self>) -> CallGuard {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        CallGuard(self.clone())
    }
}

struct CallGuard(Arc<InFlight>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FakeCa {
    /// Serve in the background with `mode`, signing with `int`.
    pub async fn start(int: Arc<Ca>, mode: Mode) -> FakeCa {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let calls = Arc::new(InFlight::default());
        let counter = calls.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let int = int.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &int, mode, &counter).await;
                });
            }
        });
        FakeCa { addr, calls }
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn serve(
    mut stream: TcpStream,
    int: &Ca,
    mode: Mode,
    calls: &Arc<InFlight>,
) -> std::io::Result<()> {
    loop {
        let mut buf = Vec::new();
        let head_end = loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())
                    .flatten()
            })
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = vec![0u8; 65536];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body: Value =
            serde_json::from_slice(&buf[head_end..head_end + len]).unwrap_or_default();
        let path = head
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let answer = if path.ends_with("/info") {
            let mut certificate = int.pem.clone();
            if mode == Mode::InfoExtraCerts {
                certificate.push_str(&crate::fixtures::root("Unrelated Extra CA").pem);
            }
            json!({"success": true, "errors": [], "messages": [],
                   "result": {"certificate": certificate, "usages": ["signing"], "expiry": "24h"}})
        } else if path.ends_with("/sign") {
            let _call = calls.start();
            if mode == Mode::Hang {
                // Never answer; the call ends when the client gives up and closes.
                let mut rest = [0u8; 1024];
                while stream.read(&mut rest).await? > 0 {}
                return Ok(());
            }
            let csr = body["certificate_request"].as_str().unwrap_or_default();
            let signed = if mode == Mode::ErrorText {
                Err(format!("signing backend unavailable: {INTERNAL_DETAIL}"))
            } else {
                sign(csr, int, mode)
            };
            match signed {
                Ok(pem) => {
                    json!({"success": true, "errors": [], "messages": [], "result": {"certificate": pem}})
                }
                Err(e) => json!({"success": false, "result": null, "messages": [],
                                 "errors": [{"code": 1000, "message": e}]}),
            }
        } else {
            json!({"success": false, "result": null, "errors": [{"code": 404, "message": "no such endpoint"}]})
        };
        let text = answer.to_string();
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        stream.write_all(resp.as_bytes()).await?;
    }
}

fn sign(csr_pem: &str, int: &Ca, mode: Mode) -> Result<String, String> {
    let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| e.to_string())?;
    let now = time::OffsetDateTime::now_utc();
    let p = &mut csr.params;
    p.not_before = now - time::Duration::minutes(1);
    p.not_after = now + time::Duration::hours(24);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.use_authority_key_identifier_extension = true;
    match mode {
        Mode::Honest | Mode::Hang | Mode::ErrorText | Mode::InfoExtraCerts => {}
        Mode::Backdated => p.not_before = now - time::Duration::days(3650),
        Mode::EarlyNotBefore => {
            p.not_before = now - time::Duration::hours(2);
            p.not_after = now + time::Duration::hours(1);
        }
        Mode::LongPast => {
            p.not_before = now - time::Duration::hours(47);
            p.not_after = now + time::Duration::minutes(59);
        }
        Mode::ExtraAia => {
            use crate::fixtures::der::{oid, seq, tlv};
            let ocsp = seq(&[
                oid(&[1, 3, 6, 1, 5, 5, 7, 48, 1]),
                tlv(0x86, b"http://ocsp.attacker.example"),
            ]);
            p.custom_extensions.push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                seq(&[ocsp]),
            ));
        }
        Mode::ExtraCrlDp => {
            p.crl_distribution_points = vec![rcgen::CrlDistributionPoint {
                uris: vec!["http://crl.attacker.example/ca.crl".into()],
            }]
        }
        Mode::Sct => {
            let list = crate::fixtures::der::tlv(0x04, &[0x00, 0x02, 0xde, 0xad]);
            p.custom_extensions.push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
                list,
            ));
        }
        Mode::ExtraSubjectAttribute => p
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters"),
        Mode::OtherCommonName => p.distinguished_name.push(DnType::CommonName, "admin"),
        Mode::UnknownCriticalExtension => {
            let mut ext =
                CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 55555, 1], vec![0x05, 0x00]);
            ext.set_criticality(true);
            p.custom_extensions.push(ext);
        }
        Mode::DuplicateBasicConstraints => {
            // SEQUENCE { BOOLEAN TRUE }: a second basicConstraints saying cA.
            let mut ext = CustomExtension::from_oid_content(
                &[2, 5, 29, 19],
                vec![0x30, 0x03, 0x01, 0x01, 0xff],
            );
            ext.set_criticality(true);
            p.custom_extensions.push(ext);
        }
        Mode::LongerLifetime => p.not_after = now + time::Duration::days(30),
        Mode::ExtraSan => p
            .subject_alt_names
            .push(SanType::DnsName("db.kube-system.svc".try_into().unwrap())),
        Mode::UnrequestedEku => p
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::CodeSigning),
        Mode::OtherKey => {
            let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let cert = csr
                .params
                .signed_by(&other, &int.issuer())
                .map_err(|e| e.to_string())?;
            return Ok(cert.pem());
        }
    }
    let cert = csr.signed_by(&int.issuer()).map_err(|e| e.to_string())?;
    Ok(cert.pem())
}
