//! Real SoftHSM2 tokens for the pkcs11 backend's tests (shared by the e2e suite, the library's
//! unit tests and `make bench-sign` through `#[path]`): a token directory with its own
//! `softhsm2.conf`, tokens made by `softhsm2-util`, keys generated inside the token by OpenSC's
//! `pkcs11-tool` (private keys sensitive and never extractable); the test-PKI kit
//! (`pki::testutil::ca_for_public_key`) certifies their public keys. Debian packages
//! `softhsm2` and `opensc` (e2e/scripts/install-test-deps.sh).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use pki::testutil::der;

/// Debian's SoftHSM2 module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A SoftHSM2 token directory and its configuration file.
pub struct SoftHsm {
    /// The directory holding `softhsm2.conf` and `tokens/`.
    pub dir: PathBuf,
    /// The configuration file (`SOFTHSM2_CONF`).
    pub conf: PathBuf,
}

/// Panics with the fix when SoftHSM2 or pkcs11-tool is missing (never a silent skip).
pub fn require_tools() {
    for (what, ok) in [
        ("softhsm2 (libsofthsm2.so)", Path::new(MODULE).exists()),
        ("softhsm2-util", which("softhsm2-util")),
        ("opensc (pkcs11-tool)", which("pkcs11-tool")),
    ] {
        assert!(
            ok,
            "{what} is missing: run e2e/scripts/install-test-deps.sh (Debian packages softhsm2, opensc)"
        );
    }
}

fn which(tool: &str) -> bool {
    Command::new(tool)
        .arg("--help")
        .output()
        .map(|_| true)
        .unwrap_or(false)
}

impl SoftHsm {
    /// A fresh token directory under `dir`.
    pub fn new(dir: &Path) -> SoftHsm {
        require_tools();
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .unwrap();
        SoftHsm {
            dir: dir.to_path_buf(),
            conf,
        }
    }

    fn run(&self, tool: &str, args: &[&str]) -> Vec<u8> {
        let out = Command::new(tool)
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Initialise a token labelled `label` with user PIN `pin`; returns its directory.
    pub fn init_token(&self, label: &str, pin: &str) -> PathBuf {
        let before = self.token_dirs();
        self.run(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                pin,
                "--so-pin",
                "so-secret-1",
            ],
        );
        let after = self.token_dirs();
        after
            .into_iter()
            .find(|d| !before.contains(d))
            .expect("a new token directory")
    }

    fn token_dirs(&self) -> Vec<PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(self.dir.join("tokens"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        v.sort();
        v
    }

    /// Generate a key pair in the token (`key_type` as pkcs11-tool spells it: `EC:prime256v1`,
    /// `EC:secp384r1`, `rsa:2048`, `EC:edwards25519`); returns the public key's
    /// SubjectPublicKeyInfo (DER). The private key stays in the token.
    pub fn keygen(&self, token: &str, pin: &str, key_type: &str, label: &str, id: &str) -> Vec<u8> {
        let m = login(token, pin);
        let mut args = m.to_vec();
        args.extend([
            "--keypairgen",
            "--key-type",
            key_type,
            "--label",
            label,
            "--id",
            id,
            "--usage-sign",
        ]);
        self.run("pkcs11-tool", &args);
        if let Some(alg_id) = ec_algorithm_id(key_type) {
            // EC and EdDSA keys: the SPKI from the token's CKA_EC_POINT (pkcs11-tool's own
            // export fails for P-384 in OpenSC 0.23).
            let point = self.ec_point(token, pin, label);
            let mut bits = vec![0u8];
            bits.extend(point);
            let mut body = alg_id;
            body.extend(der::tlv(0x03, &bits));
            return der::tlv(0x30, &body);
        }
        let out = self.dir.join(format!("{token}-{label}.pub"));
        let out_s = out.to_str().unwrap();
        let mut args = m.to_vec();
        args.extend([
            "--read-object",
            "--type",
            "pubkey",
            "--label",
            label,
            "-o",
            out_s,
        ]);
        self.run("pkcs11-tool", &args);
        let bytes = std::fs::read(&out).unwrap();
        if bytes.starts_with(b"-----BEGIN") {
            pem::parse(&bytes).unwrap().into_contents()
        } else {
            bytes
        }
    }

    /// The CKA_EC_POINT (the point itself, not its OCTET STRING) of public key `label`.
    fn ec_point(&self, token: &str, pin: &str, label: &str) -> Vec<u8> {
        let listing = self.list_objects(token, pin);
        // One section per object: a header line ("Public Key Object; EC ...") and its
        // indented attributes.
        let mut sections: Vec<Vec<&str>> = Vec::new();
        for line in listing.lines() {
            if !line.starts_with(char::is_whitespace) {
                sections.push(Vec::new());
            }
            if let Some(s) = sections.last_mut() {
                s.push(line);
            }
        }
        let block = sections
            .iter()
            .find(|s| {
                s[0].starts_with("Public Key Object")
                    && s.iter().any(|l| l.trim() == format!("label:      {label}"))
            })
            .unwrap_or_else(|| panic!("no public key {label} in {listing}"));
        let hex_point = block
            .iter()
            .find_map(|l| l.trim().strip_prefix("EC_POINT:"))
            .expect("EC_POINT")
            .trim();
        let der = hex::decode(hex_point).expect("hex EC_POINT");
        assert_eq!(der[0], 0x04, "EC_POINT is an OCTET STRING");
        der[2..].to_vec()
    }

    /// `pkcs11-tool --list-objects` of the token (the private key's attributes as it shows them).
    pub fn list_objects(&self, token: &str, pin: &str) -> String {
        String::from_utf8(self.run(
            "pkcs11-tool",
            &[&login(token, pin)[..], &["--list-objects"]].concat(),
        ))
        .unwrap()
    }
}

/// The AlgorithmIdentifier (DER) of an EC or EdDSA key type as pkcs11-tool spells it.
fn ec_algorithm_id(key_type: &str) -> Option<Vec<u8>> {
    let hex_id = match key_type {
        "EC:prime256v1" => "301306072a8648ce3d020106082a8648ce3d030107",
        "EC:secp384r1" => "301006072a8648ce3d020106052b81040022",
        "EC:edwards25519" => "300506032b6570",
        _ => return None,
    };
    Some(hex::decode(hex_id).unwrap())
}

/// pkcs11-tool's arguments for a logged-in session on `token`.
fn login<'a>(token: &'a str, pin: &'a str) -> [&'a str; 7] {
    [
        "--module",
        MODULE,
        "--token-label",
        token,
        "--login",
        "--pin",
        pin,
    ]
}
