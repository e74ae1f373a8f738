//! Throughput benchmark: bounded request loops over loopback keep-alive connections.
//!
//! `cargo run --release -p test-apiserver --bin bench [-- REQUESTS_PER_PHASE CONNECTIONS]`

use std::time::Instant;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Conn {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
    token: String,
}

impl Conn {
    async fn new(addr: std::net::SocketAddr, token: &str) -> anyhow::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (r, w) = s.into_split();
        Ok(Conn {
            r: BufReader::new(r),
            w,
            token: token.into(),
        })
    }

    async fn call(
        &mut self,
        method: &str,
        path: &str,
        ct: &str,
        body: &str,
    ) -> anyhow::Result<u16> {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nAccept: application/json\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n{body}",
            self.token,
            body.len()
        );
        self.w.write_all(req.as_bytes()).await?;
        let mut line = String::new();
        self.r.read_line(&mut line).await?;
        let code: u16 = line
            .split_whitespace()
            .nth(1)
            .context("status line")?
            .parse()?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line).await?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse()?;
            }
        }
        let mut buf = vec![0u8; len];
        self.r.read_exact(&mut buf).await?;
        Ok(code)
    }
}

async fn phase(
    name: &str,
    addr: std::net::SocketAddr,
    token: &str,
    conns: usize,
    n: usize,
    kind: u8,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut tasks = vec![];
    for c in 0..conns {
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr, &token).await?;
            for i in (c..n).step_by(conns) {
                let code = match kind {
                    0 => {
                        let body = format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm-{i}","labels":{{"app":"bench"}}}},"data":{{"k":"v"}}}}"#);
                        conn.call("POST", "/api/v1/namespaces/default/configmaps", "application/json", &body).await?
                    }
                    1 => conn.call("GET", &format!("/api/v1/namespaces/default/configmaps/cm-{}", i % 1000), "application/json", "").await?,
                    _ => {
                        let body = format!(r#"{{"data":{{"k":"v{i}"}}}}"#);
                        conn.call("PATCH", &format!("/api/v1/namespaces/default/configmaps/cm-{}", i % 1000), "application/merge-patch+json", &body).await?
                    }
                };
                if code >= 300 {
                    bail!("request {i} failed with {code}");
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<28} {n:>7} requests in {secs:>6.2}s = {:>8.0} req/s",
        n as f64 / secs
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20_000);
    let conns: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(8);
    let server = test_apiserver::TestApiServer::start(test_apiserver::Config::default()).await?;
    let addr = server.addr();
    let token = server.admin_token();
    println!("test-apiserver bench: {conns} keep-alive connections, {n} requests per phase");
    phase("create configmap (POST)", addr, &token, conns, n, 0).await?;
    phase("get configmap (GET)", addr, &token, conns, n, 1).await?;
    phase("merge-patch configmap", addr, &token, conns, n, 2).await?;
    server.shutdown().await;
    Ok(())
}
