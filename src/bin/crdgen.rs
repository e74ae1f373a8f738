//! Writes the CRDs of pki-issuer (generated from `src/api`) into the chart and the kustomize
//! base ([`pki_issuer::crds::DIRS`], relative to the current directory), or prints them as YAML
//! with `--print`.

fn main() -> anyhow::Result<()> {
    let crds = pki_issuer::crds::all_yaml()?;
    if std::env::args().nth(1).as_deref() == Some("--print") {
        for (_, yaml) in crds {
            print!("---\n{yaml}");
        }
        return Ok(());
    }
    for dir in pki_issuer::crds::DIRS {
        std::fs::create_dir_all(dir)?;
        for (file, yaml) in &crds {
            std::fs::write(std::path::Path::new(dir).join(file), yaml)?;
        }
    }
    Ok(())
}
