//! What every client API handler is given.

use ferret_server::Server;

/// The largest v2 request body. etcd 3.4's v2 API ignores
/// `--max-request-bytes` (a v3 limit): its only bound is Go's form limit
/// (`maxFormSize`, 10 MiB), past which a form is "http: POST too large".
/// etcd reads the JSON bodies of `/v2/members` and `/v2/auth` without a
/// bound; ferretcd bounds them the same way.
pub const V2_MAX_BODY_BYTES: u64 = 10 << 20;

/// Everything a request handler needs.
pub struct Api {
    pub server: Server,
    /// `--enable-v2`: serve the v2 API (`/v2/*`); without it, as etcd 3.4,
    /// only `/version` and `/health` answer on HTTP.
    pub enable_v2: bool,
    /// When this member started, Unix ns (for `/v2/stats/self`).
    pub started_ns: i64,
    /// The JSON gateway, set once the client listeners are bound.
    pub gateway: crate::api::gateway::Shared,
    /// `--client-cert-auth`: v2 auth takes the user from a TLS client
    /// certificate's common name when a request has no `Authorization`.
    pub client_cert_auth: bool,
    /// `--enable-ui`: serve the dashboard at `/ui/`.
    pub enable_ui: bool,
    /// `--host-whitelist` and `--cors`.
    pub access: crate::api::http::access::Access,
}
