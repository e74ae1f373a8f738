//! Prints the CRDs of pki-issuer as YAML, or writes them to a directory.
//!
//! `cargo run --bin crdgen -- crds/` writes one file per CRD.

fn main() -> anyhow::Result<()> {
    let crds = pki_issuer::crds::all_yaml()?;
    match std::env::args().nth(1) {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            for (file, yaml) in crds {
                std::fs::write(std::path::Path::new(&dir).join(file), yaml)?;
            }
        }
        None => {
            for (_, yaml) in crds {
                print!("---\n{yaml}");
            }
        }
    }
    Ok(())
}
