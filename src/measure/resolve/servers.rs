//! Which resolvers to ask: the system's (from `/etc/resolv.conf`) or addresses written in a
//! policy. Owns reading and validating resolver addresses; never sends anything.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// Where the system's resolvers are listed.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// A resolver list that cannot be used. Messages say what to change.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("cannot read {path}: {source}; list resolvers in the policy's `resolvers:` instead")]
    ReadResolvConf {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no nameserver in {path}: list resolvers in the policy's `resolvers:`")]
    NoNameserver { path: String },
    #[error(
        "cannot use the nameservers in {path} ({reason}): fix it or list resolvers in the policy's `resolvers:`"
    )]
    BadResolvConf { path: String, reason: String },
    #[error(
        "`{input}` is not a resolver address: use an IP address with an optional port, \
         e.g. 8.8.8.8, 1.1.1.1:53, 2001:db8::53 or [2001:db8::53]:5353{hint}"
    )]
    BadResolver { input: String, hint: &'static str },
}

/// The nameservers listed in the system's `/etc/resolv.conf`, each on port 53, in file order.
///
/// Read with hickory-resolver's own resolv.conf parser so we agree with what it would use.
pub fn system_resolvers() -> Result<Vec<SocketAddr>, ResolveError> {
    resolvers_from_file(Path::new(RESOLV_CONF))
}

/// [`system_resolvers`] for another file (tests, chroots).
pub fn resolvers_from_file(path: &Path) -> Result<Vec<SocketAddr>, ResolveError> {
    let shown = path.display().to_string();
    let text = std::fs::read(path).map_err(|source| ResolveError::ReadResolvConf {
        path: shown.clone(),
        source,
    })?;
    resolvers_from_resolv_conf(&text, &shown)
}

/// Parses resolv.conf text; `path` only names the file in errors.
pub fn resolvers_from_resolv_conf(
    text: &[u8],
    path: &str,
) -> Result<Vec<SocketAddr>, ResolveError> {
    // hickory reports "no nameservers" as a generic I/O error; look first so the message can
    // say exactly what is missing.
    let has_nameserver = String::from_utf8_lossy(text)
        .lines()
        .any(|line| line.trim_start().starts_with("nameserver"));
    if !has_nameserver {
        return Err(ResolveError::NoNameserver {
            path: path.to_string(),
        });
    }
    let (config, _options) =
        hickory_resolver::system_conf::parse_resolv_conf(text).map_err(|e| {
            ResolveError::BadResolvConf {
                path: path.to_string(),
                reason: e.to_string(),
            }
        })?;
    let mut servers: Vec<SocketAddr> = Vec::new();
    for server in config.name_servers() {
        let addr = SocketAddr::new(server.ip, 53);
        if !servers.contains(&addr) {
            servers.push(addr);
        }
    }
    if servers.is_empty() {
        return Err(ResolveError::NoNameserver {
            path: path.to_string(),
        });
    }
    Ok(servers)
}

/// Parses a resolver as written in a policy: `8.8.8.8`, `1.1.1.1:53`, `2001:db8::53`,
/// `[2001:db8::53]` or `[2001:db8::53]:5353`. The port defaults to 53; port 0 is refused.
pub fn parse_resolver(s: &str) -> Result<SocketAddr, ResolveError> {
    let input = s.trim();
    let bad = |hint: &'static str| ResolveError::BadResolver {
        input: s.to_string(),
        hint,
    };
    let addr = if let Ok(addr) = input.parse::<SocketAddr>() {
        addr
    } else if let Ok(ip) = input.parse::<IpAddr>() {
        SocketAddr::new(ip, 53)
    } else if let Some(ip) = input
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<IpAddr>().ok())
    {
        SocketAddr::new(ip, 53)
    } else if input.chars().any(|c| c.is_ascii_alphabetic()) && !input.contains(':') {
        // A resolver given by name would need another resolver to find it, and which one
        // answered would be unrecorded.
        return Err(bad(
            " (names are not accepted: write the resolver's IP address)",
        ));
    } else if input.matches(':').count() > 1 && !input.starts_with('[') {
        return Err(bad(" (put an IPv6 address in brackets when adding a port)"));
    } else {
        return Err(bad(""));
    };
    if addr.port() == 0 {
        return Err(bad(" (port 0 cannot be queried)"));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> SocketAddr {
        parse_resolver(s).unwrap_or_else(|e| panic!("`{s}` should parse: {e}"))
    }

    #[test]
    fn resolver_forms_accepted_with_default_port_53() {
        assert_eq!(ok("8.8.8.8"), "8.8.8.8:53".parse().expect("literal"));
        assert_eq!(ok("1.1.1.1:53"), "1.1.1.1:53".parse().expect("literal"));
        assert_eq!(
            ok(" 9.9.9.9:5353 "),
            "9.9.9.9:5353".parse().expect("literal")
        );
        assert_eq!(
            ok("[2001:db8::53]:5353"),
            "[2001:db8::53]:5353".parse().expect("literal")
        );
        assert_eq!(
            ok("2001:db8::53"),
            "[2001:db8::53]:53".parse().expect("literal")
        );
        assert_eq!(
            ok("[2001:db8::53]"),
            "[2001:db8::53]:53".parse().expect("literal")
        );
        assert_eq!(ok("::1"), "[::1]:53".parse().expect("literal"));
    }

    #[test]
    fn resolver_mistakes_rejected_with_a_hint() {
        for bad in [
            "",
            "dns.google",
            "dns.google:53",
            "8.8.8",
            "1.1.1.1:0",
            "1.1.1.1:99999",
            "[::1]:x",
        ] {
            assert!(parse_resolver(bad).is_err(), "`{bad}` should be rejected");
        }
        let name = parse_resolver("dns.google")
            .expect_err("names rejected")
            .to_string();
        assert!(name.contains("IP address"), "{name}");
        let zero = parse_resolver("1.1.1.1:0")
            .expect_err("port 0 rejected")
            .to_string();
        assert!(zero.contains("port 0"), "{zero}");
    }

    #[test]
    fn resolv_conf_nameservers_in_order_on_port_53() {
        let text = b"# generated\nsearch corp.example\nnameserver 192.0.2.53\noptions ndots:2\n\
                     nameserver 2001:db8::53\nnameserver 192.0.2.53\n";
        let servers = resolvers_from_resolv_conf(text, "test").expect("parses");
        assert_eq!(
            servers,
            vec![
                "192.0.2.53:53".parse::<SocketAddr>().expect("literal"),
                "[2001:db8::53]:53".parse().expect("literal"),
            ]
        );
    }

    #[test]
    fn resolv_conf_without_nameserver_says_what_to_do() {
        let err = resolvers_from_resolv_conf(b"search example.com\n", "/etc/resolv.conf")
            .expect_err("no nameserver");
        assert!(matches!(err, ResolveError::NoNameserver { .. }));
        assert_eq!(
            err.to_string(),
            "no nameserver in /etc/resolv.conf: list resolvers in the policy's `resolvers:`"
        );
    }

    #[test]
    fn system_resolvers_are_a_list_or_an_actionable_error() {
        // Depends on this machine's /etc/resolv.conf: either outcome is fine, a panic is not.
        match system_resolvers() {
            Ok(servers) => assert!(!servers.is_empty() && servers.iter().all(|s| s.port() == 53)),
            Err(e) => assert!(e.to_string().contains("resolvers:"), "{e}"),
        }
    }

    #[test]
    fn unreadable_resolv_conf_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = resolvers_from_file(&dir.path().join("missing")).expect_err("missing file");
        assert!(err.to_string().contains("resolvers:"), "{err}");
    }
}
