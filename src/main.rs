//! The `pki-issuer` binary: install the crypto provider, read flags, run.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rustls::crypto::aws_lc_rs::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a rustls crypto provider was already installed"))?;
    let args = pki_issuer::runtime::Args::parse();
    pki_issuer::runtime::telemetry::init(args.log_format);
    pki_issuer::runtime::run(args, futures::future::pending()).await?;
    Ok(())
}
