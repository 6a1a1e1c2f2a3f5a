//! etcd 3.4's access controller for the client HTTP requests (not gRPC,
//! which etcd serves around it): `--host-whitelist` and `--cors`.
//!
//! - **Hosts.** A request that did not come over TLS is refused with
//!   421 Misdirected Request, and etcd's text, unless its host (the `Host`
//!   header, or the authority of an absolute target, without the port) is
//!   whitelisted. This is etcd's defence against DNS rebinding
//!   (CVE-2018-5702): a web page of another site, whose name was made to
//!   resolve to 127.0.0.1, cannot reach a member over plain HTTP.
//! - **CORS.** Every response carries etcd's CORS headers with
//!   `Access-Control-Allow-Origin: *` if every origin is allowed, with the
//!   request's own `Origin` if that origin is on the list, and none
//!   otherwise (a browser then keeps the answer from the page that asked).
//!
//! An empty list, or one holding `*` (the default of both flags), allows
//! everything, as in etcd.

use std::collections::BTreeSet;

use hyper::header::{HeaderValue, HOST, ORIGIN};
use hyper::{Request, Response, StatusCode};

use crate::api::http::body::Body;
use crate::api::http::wire;

/// The rules of one client listener (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// `None`: every origin.
    origins: Option<BTreeSet<String>>,
    /// `None`: every host.
    hosts: Option<BTreeSet<String>>,
}

/// An empty list, or one with `*`, allows all: `None`.
fn list(items: &[String]) -> Option<BTreeSet<String>> {
    if items.is_empty() || items.iter().any(|i| i == "*") {
        return None;
    }
    Some(items.iter().cloned().collect())
}

impl Access {
    /// etcd's defaults: every host, every origin.
    pub const ALLOW_ALL: Access = Access {
        origins: None,
        hosts: None,
    };

    /// From `--cors` and `--host-whitelist`.
    pub fn new(cors: &[String], host_whitelist: &[String]) -> Access {
        Access {
            origins: list(cors),
            hosts: list(host_whitelist),
        }
    }

    /// A plaintext request's host check: the refusal to answer with, if
    /// its host is not whitelisted.
    pub fn refuse_host<B>(&self, req: &Request<B>) -> Option<Response<Body>> {
        let hosts = self.hosts.as_ref()?;
        let host = hostname(req);
        if hosts.contains(host) {
            return None;
        }
        tracing::warn!(
            host,
            capnslog_msg = %format!("rejecting HTTP request from {host:?} to prevent DNS rebinding attacks"),
            "rejecting HTTP request to prevent DNS rebinding attacks"
        );
        Some(wire::text_error(
            StatusCode::MISDIRECTED_REQUEST,
            &unrecognized_host(host),
        ))
    }

    /// The `Access-Control-Allow-Origin` value for this request, if any.
    pub fn allowed_origin<B>(&self, req: &Request<B>) -> Option<HeaderValue> {
        let Some(origins) = &self.origins else {
            return Some(HeaderValue::from_static("*"));
        };
        let origin = req.headers().get(ORIGIN)?;
        let text = origin.to_str().ok()?;
        origins.contains(text).then(|| origin.clone())
    }
}

/// Go's `httputil.GetHostname`: the request's host (the authority of an
/// absolute target, else the `Host` header) without its port; the whole
/// of it when it has no port or does not split (a bare IPv6 address).
fn hostname<B>(req: &Request<B>) -> &str {
    let host = match req.uri().authority() {
        Some(a) => a.as_str(),
        None => req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
    };
    split_host(host).unwrap_or(host)
}

/// Go's `net.SplitHostPort`, the host part: `None` where Go returns an
/// error (no port, too many colons, a bad bracket).
fn split_host(hostport: &str) -> Option<&str> {
    if let Some(rest) = hostport.strip_prefix('[') {
        let end = rest.find(']')?;
        let after = &rest[end + 1..];
        if !after.starts_with(':') || after[1..].contains([':', '[', ']']) {
            return None;
        }
        return Some(&rest[..end]);
    }
    let colon = hostport.rfind(':')?;
    let host = &hostport[..colon];
    if host.contains([':', '[', ']']) || hostport[colon + 1..].contains(['[', ']']) {
        return None;
    }
    Some(host)
}

/// etcd's answer to a host it does not recognise (its `errCVE20185702`).
fn unrecognized_host(host: &str) -> String {
    format!(
        "
etcd received your request, but the Host header was unrecognized.

To fix this, choose one of the following options:
- Enable TLS, then any HTTPS request will be allowed.
- Add the hostname you want to use to the whitelist in settings.
  - e.g. etcd --host-whitelist {}

This requirement has been added to help prevent \"DNS Rebinding\" attacks (CVE-2018-5702).
",
        ferret_gocompat::strconv::quote(host)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: Option<&str>, origin: Option<&str>) -> Request<()> {
        let mut b = Request::builder().uri("/v2/keys");
        if let Some(h) = host {
            b = b.header(HOST, h);
        }
        if let Some(o) = origin {
            b = b.header(ORIGIN, o);
        }
        b.body(()).unwrap()
    }

    fn s(items: &[&str]) -> Vec<String> {
        items.iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn go_split_host_port() {
        for (input, want) in [
            ("example.com:2379", Some("example.com")),
            ("127.0.0.1:2379", Some("127.0.0.1")),
            ("[::1]:2379", Some("::1")),
            ("example.com", None),
            ("::1", None),
            ("[::1]", None),
            (":2379", Some("")),
            ("a:b:c", None),
        ] {
            assert_eq!(split_host(input), want, "{input}");
        }
    }

    #[test]
    fn defaults_allow_every_host_and_origin() {
        for a in [
            Access::ALLOW_ALL,
            Access::new(&s(&["*"]), &s(&["*"])),
            Access::new(&[], &[]),
        ] {
            assert!(a
                .refuse_host(&req(Some("evil.example:2379"), None))
                .is_none());
            assert_eq!(
                a.allowed_origin(&req(None, Some("https://x.example"))),
                Some(HeaderValue::from_static("*"))
            );
            assert_eq!(
                a.allowed_origin(&req(None, None)),
                Some(HeaderValue::from_static("*"))
            );
        }
    }

    #[test]
    fn a_host_whitelist_refuses_other_hosts_with_etcds_text() {
        let a = Access::new(&[], &s(&["localhost", "127.0.0.1", "::1"]));
        assert!(a.refuse_host(&req(Some("localhost:2379"), None)).is_none());
        assert!(a.refuse_host(&req(Some("127.0.0.1:2379"), None)).is_none());
        assert!(a.refuse_host(&req(Some("[::1]:2379"), None)).is_none());
        assert!(a.refuse_host(&req(Some("localhost"), None)).is_none());
        let refused = a
            .refuse_host(&req(Some("rebound.example:2379"), None))
            .expect("refused");
        assert_eq!(refused.status(), StatusCode::MISDIRECTED_REQUEST);
        assert!(unrecognized_host("rebound.example")
            .contains("  - e.g. etcd --host-whitelist \"rebound.example\"\n"));
        // No Host at all (HTTP/1.0) is the empty host.
        assert!(a.refuse_host(&req(None, None)).is_some());
        assert!(Access::new(&[], &s(&[""]))
            .refuse_host(&req(None, None))
            .is_none());
    }

    #[test]
    fn a_cors_list_echoes_only_its_origins() {
        let a = Access::new(&s(&["https://ops.example", "http://127.0.0.1:8080"]), &[]);
        assert_eq!(
            a.allowed_origin(&req(None, Some("https://ops.example"))),
            Some(HeaderValue::from_static("https://ops.example"))
        );
        assert_eq!(
            a.allowed_origin(&req(None, Some("https://evil.example"))),
            None
        );
        assert_eq!(a.allowed_origin(&req(None, None)), None);
    }
}
