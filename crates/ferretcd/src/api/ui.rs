//! The dashboard: a static page served at `/ui/` on the client URLs
//! (`--enable-ui`, on by default). Its files (`crates/ferretcd/ui/`) are
//! compiled into the binary; the page talks only to the public APIs the
//! same listener serves (the v3 JSON gateway, `/v2/keys`, `/metrics`,
//! `/health`) and, for the other members' status, to their client URLs,
//! so it adds no endpoint of its own and every request it makes passes
//! the same TLS and auth checks as any client's.

use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use hyper::{Method, Response, StatusCode};

use crate::api::http::body::Body;
use crate::api::http::wire;

/// The page's files: path under `/ui/`, content type, bytes.
const FILES: &[(&str, &str, &str)] = &[
    (
        "",
        "text/html; charset=utf-8",
        include_str!("../../ui/index.html"),
    ),
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../../ui/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../ui/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../ui/style.css"),
    ),
];

/// What the page may load and talk to: its own files, and any member's
/// client URL (the other members' status).
const CSP: &str = "default-src 'self'; connect-src *; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

/// Answers `/ui` and `/ui/...`; `None` for any other path.
pub fn serve(path: &[u8], method: &Method) -> Option<Response<Body>> {
    if path == b"/ui" {
        // As Go's mux redirects a directory's path without its slash.
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
        resp.headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/ui/"));
        return Some(resp);
    }
    let name = path.strip_prefix(b"/ui/")?;
    let Some((_, content_type, text)) = FILES.iter().find(|(n, _, _)| n.as_bytes() == name) else {
        return Some(wire::text_error(
            StatusCode::NOT_FOUND,
            "404 page not found",
        ));
    };
    if method != Method::GET && method != Method::HEAD {
        return Some(wire::text_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
        ));
    }
    let mut resp = Response::new(if method == Method::HEAD {
        Body::empty()
    } else {
        Body::full(*text)
    });
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CSP),
    );
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_files_are_served_and_nothing_else() {
        let redirect = serve(b"/ui", &Method::GET).unwrap();
        assert_eq!(redirect.status(), StatusCode::MOVED_PERMANENTLY);
        for path in ["/ui/", "/ui/index.html", "/ui/app.js", "/ui/style.css"] {
            let resp = serve(path.as_bytes(), &Method::GET).unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
        }
        let page = serve(b"/ui/", &Method::GET).unwrap();
        assert_eq!(page.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(
            serve(b"/ui/../etc/passwd", &Method::GET).unwrap().status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            serve(b"/ui/app.js", &Method::POST).unwrap().status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert!(serve(b"/uix", &Method::GET).is_none());
        assert!(serve(b"/v2/keys", &Method::GET).is_none());
    }

    #[test]
    fn the_page_names_what_its_tests_look_for() {
        // The ids the browser tests use (see ui/README.md).
        let page = include_str!("../../ui/index.html");
        for id in [
            "members",
            "leader",
            "timeline",
            "kv-prefix",
            "kv-search",
            "kv-list",
            "kv-next",
            "kv-count",
            "kv-detail",
            "kv-value",
            "kv-meta",
            "kv-save",
            "kv-delete",
            "kv-history",
            "kv-new-key",
            "kv-new-value",
            "kv-create",
            "status",
            "v2-path",
            "v2-open",
            "v2-list",
            "v2-key",
            "v2-edit",
            "v2-save",
            "v2-delete",
            "v2-new-key",
            "v2-new-value",
            "v2-create",
            "watch-prefix",
            "watch-start",
            "watch-stop",
            "watch-events",
            "watch-state",
            "login",
            "login-user",
            "login-password",
            "login-submit",
            "login-error",
            "whoami",
            "logout",
            "chart-requests",
            "chart-latency",
            "chart-fsync",
            "chart-peer-rtt",
        ] {
            assert!(page.contains(&format!("id=\"{id}\"")), "no #{id}");
        }
    }
}
