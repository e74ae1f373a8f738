//! The operator's allowlist of remote CA URLs that namespaced `PKIIssuer`s may use
//! (`--allowed-remote-ca-urls`). URLs are compared parsed: scheme, host and port exactly, the
//! path by whole segments, so `https://ca.example.com.evil.com` or
//! `https://ca.example.com@evil.com` never match `https://ca.example.com`.
//!
//! A path must mean the same thing to every server and gateway on the way: any
//! percent-encoding (`%2F`, `%5c`, `%2e`, `%252F`, ...), a backslash, a `;` (path parameters,
//! `..;/` on some servers) or a `.`/`..` segment is refused outright, in entries and in
//! issuers' URLs, so a gateway that decodes before routing cannot turn
//! `/team-a/..%2fteam-b` into `/team-b`.

use url::Url;

/// The flag that fills the allowlist, for messages.
pub const FLAG: &str = "--allowed-remote-ca-urls (PKI_ISSUER_ALLOWED_REMOTE_CA_URLS)";

/// One allowed location.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    scheme: String,
    host: String,
    port: u16,
    segments: Vec<String>,
}

/// Remote CA locations that namespaced issuers may use; empty allows none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedUrls(Vec<Allowed>);

fn parse_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?}: only http and https URLs are allowed"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{s:?}: a URL with user information is not allowed"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{s:?}: a URL with a query or fragment is not allowed"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    check_path(s)?;
    Ok(url)
}

/// The raw path of `s` (before the URL parser normalises it) must be plain: no
/// percent-encoding at all, no backslash, no `;`, no `.` or `..` segment.
fn check_path(s: &str) -> Result<(), String> {
    let s = s.trim();
    let after_scheme = s.split_once("://").map_or(s, |(_, rest)| rest);
    let path = after_scheme
        .find(['/', '\\'])
        .map_or("", |i| &after_scheme[i..]);
    let why = if path.contains('%') {
        Some("percent-encoding")
    } else if path.contains('\\') {
        Some("a backslash")
    } else if path.contains(';') {
        Some("a ';'")
    } else if path.split('/').any(|seg| seg == "." || seg == "..") {
        Some("a '.' or '..' segment")
    } else {
        None
    };
    match why {
        Some(why) => Err(format!(
            "{s:?}: a remote CA URL path with {why} is not allowed (gateways may decode or normalise it differently)"
        )),
        None => Ok(()),
    }
}

fn segments(url: &Url) -> Vec<String> {
    let mut segs: Vec<String> = url
        .path_segments()
        .map(|s| s.map(str::to_string).collect())
        .unwrap_or_default();
    while segs.last().is_some_and(String::is_empty) {
        segs.pop();
    }
    segs
}

fn location(url: &Url) -> Allowed {
    Allowed {
        scheme: url.scheme().to_string(),
        host: url.host_str().unwrap_or_default().to_ascii_lowercase(),
        port: url.port_or_known_default().unwrap_or_default(),
        segments: segments(url),
    }
}

impl AllowedUrls {
    /// Parse the flag's entries (each `scheme://host[:port][/path-prefix]`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowedUrls, String> {
        entries
            .iter()
            .map(|e| e.as_ref().trim())
            .filter(|e| !e.is_empty())
            .map(|e| parse_url(e).map(|u| location(&u)))
            .collect::<Result<Vec<_>, _>>()
            .map(AllowedUrls)
    }

    /// Whether no URL is allowed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `url` is at or below one of the allowed locations.
    pub fn allows(&self, url: &str) -> bool {
        let Ok(url) = parse_url(url) else {
            return false;
        };
        let want = location(&url);
        self.0.iter().any(|a| {
            a.scheme == want.scheme
                && a.host == want.host
                && a.port == want.port
                && want.segments.starts_with(&a.segments)
        })
    }

    /// `Ok` when a namespaced issuer may use `url` (named `field` in the message).
    pub fn check(&self, field: &str, url: &str) -> Result<(), String> {
        if self.allows(url) {
            return Ok(());
        }
        let why = match parse_url(url) {
            Err(e) => e,
            Ok(_) if self.is_empty() => "no remote CA is allowed for namespaced PKIIssuers".into(),
            Ok(_) => "it is not in the list of remote CAs allowed for namespaced PKIIssuers".into(),
        };
        Err(format!(
            "{field} {url:?} is refused: {why}; the operator allows URLs with {FLAG}, \
             or use a PKIClusterIssuer"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowedUrls {
        AllowedUrls::parse(entries).unwrap()
    }

    #[test]
    fn compares_parsed_locations_not_strings() {
        let a = list(&["https://ca.example.com", "http://10.0.0.5:8888/cfssl/"]);
        assert!(a.allows("https://ca.example.com"));
        assert!(a.allows("https://CA.example.com:443/v1/pki/sign/web"));
        assert!(a.allows("http://10.0.0.5:8888/cfssl"));
        assert!(a.allows("http://10.0.0.5:8888/cfssl/api"));
        for bad in [
            "https://ca.example.com.evil.com",
            "https://ca.example.com@evil.com",
            "https://evil.com/?https://ca.example.com",
            "https://evil.com#https://ca.example.com",
            "http://ca.example.com",
            "https://ca.example.com:8443",
            "http://10.0.0.5:8888/cfsslx",
            "http://10.0.0.5:8888/",
            "http://10.0.0.5:8888/cfssl/../admin",
            "http://10.0.0.5:8888/cfssl/%2e%2e/admin",
            "http://10.0.0.5:8889/cfssl",
            "http://10.0.0.5:8888/cfssl/..%2fadmin",
            "ftp://ca.example.com",
            "not a url",
        ] {
            assert!(!a.allows(bad), "{bad} must not be allowed");
        }
    }

    #[test]
    fn empty_allows_nothing_and_says_why() {
        let a = AllowedUrls::default();
        assert!(a.is_empty() && !a.allows("https://ca.example.com"));
        let err = a.check("spec.vault.server", "https://x").unwrap_err();
        assert!(
            err.contains("\"https://x\"") && err.contains("--allowed-remote-ca-urls"),
            "{err}"
        );
        assert!(list(&["https://x"]).check("f", "https://x/").is_ok());
    }

    #[test]
    fn encoded_separators_and_dots_never_match() {
        let a = list(&["https://gw.example.com/team-a"]);
        assert!(a.allows("https://gw.example.com/team-a/v1/pki/sign/web"));
        assert!(
            a.allows("https://gw.example.com/team-a/")
                && !a.allows("https://gw.example.com/team-a.v2")
        );
        for bad in [
            "https://gw.example.com/team-a/..%2fteam-b",
            "https://gw.example.com/team-a/..%2Fteam-b",
            "https://gw.example.com/team-a/%2e%2e/team-b",
            "https://gw.example.com/team-a/%2E%2E%2Fteam-b",
            "https://gw.example.com/team-a/.%2e/team-b",
            "https://gw.example.com/team-a/..%5cteam-b",
            "https://gw.example.com/team-a/..%5Cteam-b",
            "https://gw.example.com/team-a\\..\\team-b",
            "https://gw.example.com/team-a/..%252fteam-b",
            "https://gw.example.com/team-a/%252e%252e/team-b",
            "https://gw.example.com/team-a/..;/team-b",
            "https://gw.example.com/team-a;x=1/../team-b",
            "https://gw.example.com/team-a/./x",
            "https://gw.example.com/team-a/%74eam-b",
            "https://gw.example.com/team-a%2f..%2fteam-b",
        ] {
            assert!(!a.allows(bad), "{bad} must not be allowed");
            let err = a.check("cfssl.url", bad).unwrap_err();
            assert!(err.contains("refused"), "{err}");
        }
        for bad_entry in [
            "https://gw.example.com/team-a%2f",
            "https://gw.example.com/a/../team-a",
            "https://gw.example.com/team-a\\x",
            "https://gw.example.com/team-a;v",
        ] {
            assert!(AllowedUrls::parse(&[bad_entry]).is_err(), "{bad_entry}");
        }
    }

    #[test]
    fn refuses_bad_entries() {
        for bad in [
            "ca.example.com",
            "ftp://x",
            "https://u:p@x",
            "https://x/?q",
            "https://",
        ] {
            assert!(AllowedUrls::parse(&[bad]).is_err(), "{bad}");
        }
        assert!(AllowedUrls::parse(&["", " "]).unwrap().is_empty());
    }
}
