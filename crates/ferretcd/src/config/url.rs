//! `Url`: a URL as etcd accepts it in its URL flags, and URL lists.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A URL as etcd accepts it in its URL flags: `http` or `https`, a host
/// (name, IPv4 address or bracketed IPv6 address) and a port, nothing else.
/// `Display` prints it as given, with the scheme in lowercase.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Url {
    scheme: String,
    /// `host:port` exactly as written.
    authority: String,
    /// The host without IPv6 brackets; may be empty (`http://:2379`).
    host: String,
    port: u16,
}

impl Url {
    /// Parses a URL, refusing what etcd refuses, with etcd's messages.
    pub fn parse(input: &str) -> Result<Url, String> {
        let text = input.trim();
        let scheme_err = || format!("URL scheme must be http, https, unix, or unixs: {text}");
        let host_port_err = || format!("URL address does not have the form \"host:port\": {text}");

        let (scheme, rest) = match text.split_once(':') {
            Some((s, rest)) if is_scheme(s) => (s.to_ascii_lowercase(), rest),
            _ => return Err(scheme_err()),
        };
        match scheme.as_str() {
            "http" | "https" => {}
            "unix" | "unixs" => {
                return Err(format!(
                    "ferretcd does not support unix socket URLs: {text}"
                ))
            }
            _ => return Err(scheme_err()),
        }
        let Some(after_slashes) = rest.strip_prefix("//") else {
            return Err(host_port_err());
        };
        let end = after_slashes
            .find(['/', '?', '#'])
            .unwrap_or(after_slashes.len());
        let (authority, tail) = after_slashes.split_at(end);
        if !tail.is_empty() {
            return Err(format!("URL must not contain a path: {text}"));
        }
        if authority.contains('@') {
            return Err(host_port_err());
        }

        let (host, port_text) = if let Some(bracketed) = authority.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(format!("parse {text:?}: missing ']' in host"));
            };
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(host_port_err());
            }
            match after.strip_prefix(':') {
                Some(port) => (host, port),
                None if after.is_empty() => return Err(host_port_err()),
                None => return Err(format!("parse {text:?}: invalid port {after:?} after host")),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => return Err(host_port_err()),
                Some((host, port)) => (host, port),
                None => return Err(host_port_err()),
            }
        };
        if !port_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "parse {text:?}: invalid port \":{port_text}\" after host"
            ));
        }
        // Like Go, an empty port means port 0 (any free port).
        let port = if port_text.is_empty() {
            0
        } else {
            port_text
                .parse::<u16>()
                .map_err(|_| format!("parse {text:?}: invalid port \":{port_text}\" after host"))?
        };
        Ok(Url {
            scheme,
            authority: authority.to_string(),
            host: host.to_string(),
            port,
        })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The host, without brackets around an IPv6 address.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` as written (brackets kept), suitable for binding or
    /// connecting, e.g. `127.0.0.1:2379` or `[::1]:2379`.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// True for `https`.
    pub fn is_tls(&self) -> bool {
        self.scheme == "https"
    }

    /// The host as an IP address, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

impl FromStr for Url {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Url::parse(s)
    }
}

impl PartialOrd for Url {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// URLs sort as their text, as etcd sorts them.
impl Ord for Url {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

/// Go's URL scheme grammar: a letter, then letters, digits, `+`, `-`, `.`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// A comma-separated URL list as etcd reads it: every URL checked, then
/// sorted; duplicates dropped.
pub(super) fn parse_url_list(text: &str) -> Result<Vec<Url>, String> {
    let mut urls = text
        .split(',')
        .map(Url::parse)
        .collect::<Result<Vec<_>, _>>()?;
    urls.sort();
    urls.dedup();
    Ok(urls)
}

pub(super) fn join_urls(urls: &[Url]) -> String {
    urls.iter()
        .map(Url::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
