//! The v3 client as etcdctl 3.4's `clientv3` behaves to its user: the
//! global flags read (and `ETCDCTL_*` variables), endpoints tried in turn,
//! `--user` authenticated before the first request and its token sent
//! with each, requests bounded by `--command-timeout`, and errors worded
//! as etcdctl prints them.
//!
//! A request waits for a connection until its deadline, as clientv3's do
//! (its calls wait for a ready connection while grpc-go reconnects): when
//! no endpoint answers, a command waits its whole timeout. A client of one
//! endpoint (`Client::direct`) is what clientv3's maintenance calls to a
//! given endpoint dial, and its failures are worded as theirs.
//!
//! Retries follow clientv3's rule: a request that may have reached a
//! server is retried only if it is repeatable (a read) and the error says
//! the server was unavailable; a write is retried only if it was never
//! sent (no connection). A write whose outcome is unknown is never sent
//! again.
//!
//! TLS follows etcdctl 3.4's rules (`newClientCfg` and clientv3's
//! `dialWithBalancerCreds`): a TLS configuration exists when `--cert`,
//! `--key` or `--cacert` is given, or with `--insecure-transport=false`
//! (then without files: the system's roots); `--insecure-skip-tls-verify`
//! only changes that configuration, and alone does nothing. Whether a
//! connection uses TLS is decided by the scheme of the *first* endpoint,
//! for every endpoint: `http://` never (whatever the flags), `https://`
//! always (with the configuration, else the system's roots), no scheme
//! when the configuration exists. The server's certificate must name the
//! endpoint's host. The TCP connection and the TLS handshake are made by
//! ferretctl's own connector ([`connector`], tokio-rustls under tonic),
//! which tonic is given as a plain `http://` endpoint so that it never
//! adds TLS of its own. A handshake that fails is a connection that failed
//! (grpc-go's words: `transport: authentication handshake failed: ...`),
//! retried until the request's deadline like a refused connection; so is
//! a connection whose server refused the client's certificate after the
//! client's part of a TLS 1.3 handshake ended (the request then fails with
//! the server's alert, and the server never read it), as grpc-go never
//! sees such a connection become ready.
//!
//! Not implemented yet, and refused with a clear error rather than
//! ignored: DNS discovery (`--discovery-srv`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferret_proto::etcdserverpb::auth_client::AuthClient;
use ferret_proto::etcdserverpb::AuthenticateRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use super::cli::{exit, Exit, Invocation};
use super::printer::Display;
use crate::oserr::errno_text;
use crate::tls;

/// Whether clientv3 may send a request again after an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Reads: again on `Unavailable`.
    Repeatable,
    /// Writes: again only if nothing was sent.
    NonRepeatable,
}

/// The settings etcdctl reads from the global flags.
#[derive(Clone)]
pub struct Config {
    pub endpoints: Vec<String>,
    pub dial_timeout: Duration,
    pub command_timeout: Duration,
    /// `--keepalive-time` and `--keepalive-timeout`: HTTP/2 pings on the
    /// connection, as clientv3 sets gRPC's keepalive (a dead server is
    /// noticed within time + timeout).
    pub keepalive_time: Duration,
    pub keepalive_timeout: Duration,
    pub user: Option<(String, String)>,
    /// clientv3's `Config.TLS`: `None` when etcdctl sets none (no TLS
    /// file and `--insecure-transport`); see the module doc for which
    /// connections use it.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// The global flags of `inv`, with `ETCDCTL_*` variables applied, as
/// etcdctl's `clientConfigFromCmd` reads them; also the output format.
pub fn config(inv: &Invocation) -> Result<(Config, Display), Exit> {
    let (cfg, display, _) = config_and_flags(inv)?;
    Ok((cfg, display))
}

/// [`config`], and the flags with the `ETCDCTL_*` variables applied, for
/// the commands that read more of them afterwards (etcdctl sets the
/// variables into its flags once).
pub fn config_and_flags<'a>(
    inv: &Invocation<'a>,
) -> Result<(Config, Display, Invocation<'a>), Exit> {
    let inv = with_env(inv)?;
    if inv.bool("debug") {
        // etcdctl prints every inherited flag as the variable that sets it.
        for (key, value) in inv.inherited_for_debug() {
            eprintln!("{key}={value}");
        }
    }
    let endpoints = endpoints(&inv)?;
    check_tls_flags(&inv)?;
    // etcdctl asks for `--user`'s password before it reads `-w`.
    let user = auth_from_flags(&inv.str("user"), &inv.str("password"))?;
    let display = Display::from_flags(&inv.str("write-out"), inv.bool("hex"))?;
    let tls = tls_from_flags(&inv)?;
    let cfg = Config {
        endpoints,
        dial_timeout: inv.duration("dial-timeout"),
        command_timeout: inv.duration("command-timeout"),
        keepalive_time: inv.duration("keepalive-time"),
        keepalive_timeout: inv.duration("keepalive-timeout"),
        user,
        tls,
    };
    Ok((cfg, display, inv))
}

/// etcdctl's `endpointsFromCmd`: DNS discovery (not implemented yet,
/// refused), else `--endpoints`, each trimmed of spaces.
pub fn endpoints(inv: &Invocation) -> Result<Vec<String>, Exit> {
    if !inv.str("discovery-srv").is_empty() {
        return Err(Exit::new(
            exit::ERROR,
            "--discovery-srv (DNS discovery) is not implemented in ferretctl yet",
        ));
    }
    Ok(inv
        .strs("endpoints")
        .iter()
        .map(|e| e.trim().to_string())
        .collect())
}

/// `inv` with the `ETCDCTL_*` variables applied to its inherited flags
/// (etcd's `flags.SetPflagsFromEnv`), once the warnings about the other
/// `ETCDCTL_*` variables are printed.
pub fn with_env<'a>(inv: &Invocation<'a>) -> Result<Invocation<'a>, Exit> {
    let mut inv = inv.clone();
    // etcdctl removes ETCDCTL_API (which chose v3) before reading the rest.
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k != "ETCDCTL_API")
        .collect();
    match inv.apply_env(&env) {
        Ok(warnings) => {
            for w in warnings {
                eprintln!("{} W | pkg/flags: {w}", capnslog_time());
            }
        }
        // etcd's flags package ends the process through capnslog's Fatalf
        // (a critical line, exit 1), not etcdctl's `Error:`.
        Err(e) => {
            eprintln!("{} C | pkg/flags: {}", capnslog_time(), e.msg);
            std::process::exit(e.code);
        }
    }
    Ok(inv)
}

/// etcdctl's `keyAndCertFromCmd`: `--cert`, `--key` or `--cacert` given
/// as an empty string is refused.
pub fn check_tls_flags(inv: &Invocation) -> Result<(), Exit> {
    for (flag, what) in [("cert", "--cert"), ("key", "--key"), ("cacert", "--cacert")] {
        if inv.changed(flag) && inv.str(flag).is_empty() {
            return Err(Exit::new(
                exit::BAD_ARGS,
                format!("empty string is passed to {what} option"),
            ));
        }
    }
    Ok(())
}

/// The TLS configuration of the global flags (`--cert`, `--key`,
/// `--cacert`, `--insecure-transport`, `--insecure-skip-tls-verify`), as
/// etcdctl's `newClientCfg` makes it; see [`tls_config`].
pub fn tls_from_flags(inv: &Invocation) -> Result<Option<Arc<rustls::ClientConfig>>, Exit> {
    let files = tls::Files {
        cert: inv.str("cert"),
        key: inv.str("key"),
        ca: inv.str("cacert"),
    };
    tls_config(
        &files,
        inv.bool("insecure-transport"),
        inv.bool("insecure-skip-tls-verify"),
    )
}

/// etcdctl's `newClientCfg`: a configuration when any file is named, or
/// an empty one (the system's roots) when the transport is not to be
/// insecure; `skip_verify` applies to it only. A file that cannot be read
/// or used ends the command with etcd's text and exit 128.
pub fn tls_config(
    files: &tls::Files,
    insecure_transport: bool,
    skip_verify: bool,
) -> Result<Option<Arc<rustls::ClientConfig>>, Exit> {
    if !files.any() && insecure_transport {
        return Ok(None);
    }
    tls::client_config(files, skip_verify, tls::Alpn::H2)
        .map(Some)
        .map_err(|e| Exit::new(exit::BAD_ARGS, e))
}

/// clientv3's transport credentials for a client of `endpoints`
/// (`dialWithBalancerCreds`, and `directDialCreds` for a client of one):
/// by the scheme of the first endpoint, for all of them.
fn transport_for(
    endpoints: &[String],
    tls: &Option<Arc<rustls::ClientConfig>>,
) -> Result<Option<Arc<rustls::ClientConfig>>, Exit> {
    let scheme = endpoints
        .first()
        .and_then(|e| e.split_once("://"))
        .map(|(s, _)| s);
    match scheme {
        None => Ok(tls.clone()),
        Some("https") | Some("unixs") => match tls {
            Some(t) => Ok(Some(t.clone())),
            // grpc's credentials without a configuration of their own.
            None => tls::client_config(&tls::Files::default(), false, tls::Alpn::H2)
                .map(Some)
                .map_err(|e| Exit::new(exit::ERROR, e)),
        },
        Some(_) => Ok(None),
    }
}

/// `--user name[:password]` and `--password`, prompting (speakeasy's
/// `Ask`, as etcdctl does) when no password is given.
pub fn auth_from_flags(user: &str, password: &str) -> Result<Option<(String, String)>, Exit> {
    if user.is_empty() {
        return Ok(None);
    }
    if !password.is_empty() {
        return Ok(Some((user.to_string(), password.to_string())));
    }
    match user.split_once(':') {
        Some((u, p)) => Ok(Some((u.to_string(), p.to_string()))),
        None => {
            let p = super::prompt::ask_password("Password: ")
                .map_err(|e| Exit::new(exit::ERROR, e))
                .and_then(super::prompt::password_text)?;
            Ok(Some((user.to_string(), p)))
        }
    }
}

/// A connection to the cluster, made when the first request needs it
/// (or at once with `--user`, as clientv3 authenticates when it is made).
pub struct Client {
    /// Taken while a request runs on it (`block_on` needs `&mut self`).
    rt: Option<Runtime>,
    cfg: Config,
    /// The endpoint in use, and its channel.
    current: usize,
    channel: Option<Channel>,
    token: Option<String>,
    /// The server answered `--user`'s authentication with "authentication
    /// is not enabled": clientv3 then goes on without a token.
    auth_not_enabled: bool,
    /// For the `target` of clientv3's warnings.
    client_id: String,
    /// The TLS every connection of this client uses, if any
    /// ([`transport_for`]).
    transport: Option<Arc<rustls::ClientConfig>>,
    /// What the connection of `channel` has shown.
    conn_state: Option<Arc<ConnState>>,
    /// A connection to one endpoint as clientv3's `Dial(endpoint)` makes
    /// it (gRPC's `passthrough` resolver), not through its balancer: its
    /// warnings name `passthrough:///<endpoint>` and report the dial error.
    direct: bool,
}

/// grpc-go's reconnection backoff: the first pause, its growth (x1.6) and
/// its cap, the defaults clientv3 keeps.
const CONNECT_BACKOFF_FIRST: Duration = Duration::from_secs(1);
const CONNECT_BACKOFF_MAX: Duration = Duration::from_secs(120);

/// clientv3's `defaultUnaryMaxRetries`: how many times a request is sent
/// at most, whatever time is left.
const UNARY_MAX_ATTEMPTS: u32 = 100;

/// A deadline for what etcdctl runs with `context.TODO()`: none that a
/// command lives to see.
const NO_DEADLINE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Client {
    /// etcdctl's `mustClientFromCmd`: with `--user`, clientv3 authenticates
    /// at once, within the dial timeout, and a failure ends the command
    /// there (exit 2, after clientv3's warning).
    pub fn new(cfg: Config) -> Result<Client, Exit> {
        let mut c = Client::unconnected(cfg)?;
        if c.cfg.user.is_some() {
            let deadline = if c.cfg.dial_timeout.is_zero() {
                Instant::now() + NO_DEADLINE
            } else {
                Instant::now() + c.cfg.dial_timeout
            };
            let rt = c.take_runtime()?;
            let logged_in = rt.block_on(c.login(deadline));
            c.put_runtime(rt);
            logged_in.map_err(|e| Exit::new(exit::BAD_CONNECTION, e.msg))?;
        }
        Ok(c)
    }

    fn unconnected(cfg: Config) -> Result<Client, Exit> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Exit::new(exit::ERROR, e.to_string()))?;
        let transport = transport_for(&cfg.endpoints, &cfg.tls)?;
        Ok(Client {
            rt: Some(rt),
            transport,
            conn_state: None,
            cfg,
            current: 0,
            channel: None,
            token: None,
            auth_not_enabled: false,
            client_id: pseudo_uuid(),
            direct: false,
        })
    }

    /// A client of `endpoint` alone, as clientv3's maintenance calls to a
    /// given endpoint (`Status`, `HashKV`, `Defragment`) dial it
    /// (authenticating with the first request).
    pub fn direct(cfg: &Config, endpoint: &str) -> Result<Client, Exit> {
        let mut c = Client::unconnected(Config {
            endpoints: vec![endpoint.to_string()],
            ..cfg.clone()
        })?;
        c.direct = true;
        Ok(c)
    }

    /// `--dial-timeout`.
    pub fn dial_timeout(&self) -> Duration {
        self.cfg.dial_timeout
    }

    /// A channel to some endpoint, trying each in turn from the current
    /// one, and again after a pause while none connects: clientv3's calls
    /// wait for a ready connection until their deadline, while grpc-go
    /// keeps reconnecting. `Err` with the last dial error (as Go's `net`
    /// words it) once `deadline` passes.
    async fn connect(&mut self, deadline: Instant) -> Result<Channel, String> {
        if let Some(c) = &self.channel {
            return Ok(c.clone());
        }
        let n = self.cfg.endpoints.len();
        let mut last = String::from("no endpoint to dial");
        let mut backoff = CONNECT_BACKOFF_FIRST;
        loop {
            for k in 0..n {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(last);
                }
                let i = (self.current + k) % n;
                let raw = self.cfg.endpoints[i].clone();
                let ep = match Endpoint::from_shared(endpoint_url(&raw)) {
                    Ok(ep) => ep,
                    Err(e) => {
                        last = format!("transport: Error while dialing dial tcp: {e}");
                        continue;
                    }
                };
                let server_name = match &self.transport {
                    None => None,
                    Some(_) => match tls::server_name(host_of(&raw)) {
                        Ok(n) => Some(n),
                        Err(e) => {
                            last = format!("transport: authentication handshake failed: {e}");
                            continue;
                        }
                    },
                };
                let state = Arc::new(ConnState::default());
                let connector = connector(self.transport.clone(), server_name, state.clone());
                let mut ep = ep
                    .connect_timeout(self.cfg.dial_timeout.min(left))
                    .tcp_nodelay(true);
                if !self.cfg.keepalive_time.is_zero() {
                    ep = ep
                        .http2_keep_alive_interval(self.cfg.keepalive_time)
                        .keep_alive_timeout(self.cfg.keepalive_timeout)
                        .keep_alive_while_idle(true);
                }
                match tokio::time::timeout(left, ep.connect_with_connector(connector)).await {
                    Ok(Ok(ch)) => {
                        self.current = i;
                        self.channel = Some(ch.clone());
                        self.conn_state = Some(state);
                        return Ok(ch);
                    }
                    Ok(Err(e)) => last = go_dial_error(&raw, &e).await,
                    Err(_) => {
                        last = format!(
                            "transport: Error while dialing dial tcp {}: i/o timeout",
                            host_port(&raw)
                        )
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(last);
            }
            tokio::time::sleep(backoff.min(left)).await;
            backoff = (backoff * 8 / 5).min(CONNECT_BACKOFF_MAX);
        }
    }

    /// Authenticates with `--user` if it is not done yet (clientv3's
    /// `getToken`), before `deadline`, printing clientv3's warning when it
    /// fails. "authentication is not enabled" is no failure: the client
    /// goes on without a token.
    async fn login(&mut self, deadline: Instant) -> Result<(), Exit> {
        if self.cfg.user.is_none() || self.token.is_some() || self.auth_not_enabled {
            return Ok(());
        }
        let expired = || Exit::new(exit::ERROR, "context deadline exceeded");
        let mut backoff = CONNECT_BACKOFF_FIRST;
        loop {
            let Ok(ch) = self.connect(deadline).await else {
                self.warn(0, "rpc error: code = DeadlineExceeded desc = latest balancer error: all SubConns are in TransientFailure");
                return Err(expired());
            };
            let left = deadline.saturating_duration_since(Instant::now());
            return match tokio::time::timeout(left, self.authenticate(ch)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(st)) if self.never_ready(&st) => {
                    // As a request on such a connection (see `unary_async`).
                    self.channel = None;
                    tokio::time::sleep(backoff.min(left)).await;
                    backoff = (backoff * 8 / 5).min(CONNECT_BACKOFF_MAX);
                    if Instant::now() < deadline {
                        continue;
                    }
                    self.warn(0, "rpc error: code = DeadlineExceeded desc = latest balancer error: all SubConns are in TransientFailure");
                    Err(expired())
                }
                Ok(Err(st)) => {
                    self.warn(0, &go_status(&st));
                    if st.message() == "etcdserver: authentication is not enabled" {
                        self.auth_not_enabled = true;
                        return Ok(());
                    }
                    Err(Exit::new(exit::ERROR, error_text(&st)))
                }
                Err(_) => {
                    self.warn(
                        0,
                        "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
                    );
                    Err(expired())
                }
            };
        }
    }

    /// Authenticates with `--user` (clientv3 does at dial time).
    async fn authenticate(&mut self, ch: Channel) -> Result<(), Status> {
        let Some((name, password)) = self.cfg.user.clone() else {
            return Ok(());
        };
        let resp = AuthClient::new(ch)
            .authenticate(AuthenticateRequest { name, password })
            .await?;
        self.token = Some(resp.into_inner().token);
        Ok(())
    }

    /// The runtime, for a command that drives its own stream (`watch`);
    /// give it back with `put_runtime`.
    pub fn take_runtime(&mut self) -> Result<Runtime, Exit> {
        self.rt
            .take()
            .ok_or_else(|| Exit::new(exit::ERROR, "the client's runtime is in use"))
    }

    pub fn put_runtime(&mut self, rt: Runtime) {
        self.rt = Some(rt);
    }

    /// A channel and the token to use on it, waiting as long as it takes
    /// for an endpoint to answer (watches have no deadline); `None` only
    /// without endpoints, or when authentication is refused.
    pub async fn channel_forever(&mut self) -> Option<(Channel, Auth)> {
        if self.cfg.endpoints.is_empty() {
            return None;
        }
        loop {
            let deadline = Instant::now() + self.cfg.dial_timeout.max(Duration::from_millis(100));
            if let Ok(ch) = self.connect(deadline).await {
                if self.cfg.user.is_some() && self.token.is_none() && !self.auth_not_enabled {
                    match self.authenticate(ch.clone()).await {
                        Ok(()) => {}
                        Err(st) if st.message().starts_with("etcdserver: ") => {
                            eprintln!("Error: {}", error_text(&st));
                            std::process::exit(exit::ERROR);
                        }
                        Err(_) => {
                            self.channel = None;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    }
                }
                return Some((ch, Auth(self.token.clone())));
            }
            self.current = (self.current + 1) % self.cfg.endpoints.len();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether `st` is the failure of a connection that never became ready:
    /// it closed before the server sent anything.
    fn never_ready(&self, st: &Status) -> bool {
        !st.message().starts_with("etcdserver: ")
            && self
                .conn_state
                .as_ref()
                .is_some_and(|s| !s.received.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Drops the channel in use (it broke): the next request reconnects,
    /// to the next endpoint.
    pub fn forget_channel(&mut self) {
        self.channel = None;
        self.current = (self.current + 1) % self.cfg.endpoints.len().max(1);
    }

    /// Sends one unary request, retrying as clientv3 does, within the
    /// command timeout. `f` builds the call from a channel and a request
    /// wrapper that carries the token.
    pub fn unary<T, F, Fut>(&mut self, retry: Retry, f: F) -> Result<T, Exit>
    where
        F: Fn(Channel, Auth) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let deadline = Instant::now() + self.cfg.command_timeout;
        self.unary_until(retry, deadline, f)
    }

    /// [`Client::unary`] with no time limit, for the requests etcdctl makes
    /// with `context.TODO()` (`lease timetolive`, `lease list`): it waits
    /// for a connection as long as it takes, as grpc-go's `WaitForReady`
    /// does.
    pub fn unary_unbounded<T, F, Fut>(&mut self, retry: Retry, f: F) -> Result<T, Exit>
    where
        F: Fn(Channel, Auth) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.unary_until(retry, Instant::now() + NO_DEADLINE, f)
    }

    /// [`Client::unary`] without a time limit, from async code (the
    /// concurrency recipes run their requests with clientv3's client
    /// context, which has no deadline).
    pub async fn unary_forever<T, F, Fut>(&mut self, retry: Retry, f: F) -> Result<T, Exit>
    where
        F: Fn(Channel, Auth) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        self.unary_async(retry, Instant::now() + NO_DEADLINE, f)
            .await
    }

    /// [`Client::unary`] within a deadline of the caller's, for commands
    /// whose several requests share one context in etcdctl.
    pub fn unary_until<T, F, Fut>(
        &mut self,
        retry: Retry,
        deadline: Instant,
        f: F,
    ) -> Result<T, Exit>
    where
        F: Fn(Channel, Auth) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let Some(rt) = self.rt.take() else {
            return Err(Exit::new(exit::ERROR, "the client's runtime is in use"));
        };
        let out = rt.block_on(self.unary_async(retry, deadline, f));
        self.rt = Some(rt);
        out
    }

    /// [`Client::unary_until`] inside a runtime the caller drives (a
    /// command that uses two clients at once, `make-mirror`).
    pub async fn unary_async<T, F, Fut>(
        &mut self,
        retry: Retry,
        deadline: Instant,
        f: F,
    ) -> Result<T, Exit>
    where
        F: Fn(Channel, Auth) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut attempt = 0u32;
        let mut refreshed = false;
        let mut rejected_backoff = CONNECT_BACKOFF_FIRST;
        loop {
            let ch = match self.connect(deadline).await {
                Ok(ch) => ch,
                Err(dial) => {
                    let balancer = if self.direct {
                        // grpc-go's `connection error: desc = %q`.
                        format!(
                            "connection error: desc = {}",
                            ferret_gocompat::strconv::quote(dial)
                        )
                    } else {
                        "all SubConns are in TransientFailure".to_string()
                    };
                    let err = format!(
                        "rpc error: code = DeadlineExceeded desc = latest balancer error: {balancer}"
                    );
                    self.warn(attempt, &err);
                    return Err(Exit::new(exit::ERROR, "context deadline exceeded"));
                }
            };
            // Authenticated when the client was made; again after the
            // server refused the token (below), or for a direct client.
            self.login(deadline).await?;
            let auth = Auth(self.token.clone());
            let left = deadline.saturating_duration_since(Instant::now());
            let st = match tokio::time::timeout(left, f(ch, auth)).await {
                Ok(Ok(r)) => return Ok(r.into_inner()),
                Ok(Err(st)) => st,
                Err(_) => {
                    self.warn(
                        attempt,
                        "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
                    );
                    return Err(Exit::new(exit::ERROR, "context deadline exceeded"));
                }
            };
            if self.never_ready(&st) {
                // The connection closed before the server said anything
                // (a TLS server that refused the client's certificate, or
                // a plain client on a TLS port): grpc-go never saw it
                // become ready and the server read no request; connect
                // again until the deadline.
                self.channel = None;
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(rejected_backoff.min(left)).await;
                rejected_backoff = (rejected_backoff * 8 / 5).min(CONNECT_BACKOFF_MAX);
                if Instant::now() < deadline {
                    continue;
                }
                let balancer = if self.direct {
                    "connection closed"
                } else {
                    "all SubConns are in TransientFailure"
                };
                self.warn(
                    attempt,
                    &format!("rpc error: code = DeadlineExceeded desc = latest balancer error: {balancer}"),
                );
                return Err(Exit::new(exit::ERROR, "context deadline exceeded"));
            }
            self.warn(attempt, &go_status(&st));
            attempt += 1;
            let msg = st.message();
            if !refreshed
                && self.cfg.user.is_some()
                && (msg == "etcdserver: invalid auth token"
                    || msg == "etcdserver: revision of auth store is old")
            {
                refreshed = true;
                self.token = None;
                continue;
            }
            let transport = !msg.starts_with("etcdserver: ");
            if transport {
                // The connection broke: drop it, try the next endpoint.
                self.channel = None;
                self.current = (self.current + 1) % self.cfg.endpoints.len().max(1);
            }
            let never_sent = st.code() == Code::Unavailable && msg.contains("tcp connect error");
            let again = st.code() == Code::Unavailable
                && match retry {
                    Retry::Repeatable => true,
                    Retry::NonRepeatable => never_sent,
                };
            if !again || Instant::now() >= deadline || attempt >= UNARY_MAX_ATTEMPTS {
                return Err(Exit::new(exit::ERROR, error_text(&st)));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// clientv3's warning for a failed attempt (its zap logger on stderr).
    fn warn(&self, attempt: u32, error: &str) {
        let endpoint = self
            .cfg
            .endpoints
            .get(self.current)
            .cloned()
            .unwrap_or_default();
        let target = if self.direct {
            format!("passthrough:///{endpoint}")
        } else {
            format!(
                "endpoint://client-{}/{}",
                self.client_id,
                host_port(&endpoint)
            )
        };
        eprintln!(
            "{{\"level\":\"warn\",\"ts\":\"{}\",\"caller\":\"clientv3/retry_interceptor.go:62\",\"msg\":\"retrying of unary invoker failed\",\"target\":{},\"attempt\":{attempt},\"error\":{}}}",
            zap_time(),
            ferret_gocompat::json::quote(target),
            ferret_gocompat::json::quote(error)
        );
    }
}

/// The token to send with a request, if any.
#[derive(Clone)]
pub struct Auth(Option<String>);

impl Auth {
    /// `msg` as a request carrying the token.
    pub fn req<M>(&self, msg: M) -> Request<M> {
        let mut r = Request::new(msg);
        if let Some(t) = &self.0 {
            if let Ok(v) = MetadataValue::try_from(t.as_str()) {
                r.metadata_mut().insert("token", v);
            }
        }
        r
    }
}

/// An endpoint as the URL tonic is given: always `http://host:port`, so
/// that tonic adds no TLS of its own (even if another crate of the build
/// enables its TLS features); the connector makes the TLS connection.
fn endpoint_url(ep: &str) -> String {
    format!("http://{}", host_port(ep))
}

/// The `host:port` of an endpoint (its URL without the scheme).
fn host_port(ep: &str) -> &str {
    ep.split_once("://").map_or(ep, |(_, rest)| rest)
}

/// The host of an endpoint, without its port: the name its server's
/// certificate must hold (clientv3 checks the dialed endpoint's host).
fn host_of(ep: &str) -> &str {
    let hp = host_port(ep);
    let hp = hp.split('/').next().unwrap_or(hp);
    if let Some(rest) = hp.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    hp.rsplit_once(':').map_or(hp, |(h, _)| h)
}

/// A TLS handshake that failed, in Go's words; carried through tonic's
/// error to [`go_dial_error`].
#[derive(Debug)]
struct HandshakeFailed(String);

impl std::fmt::Display for HandshakeFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HandshakeFailed {}

/// The connection of one endpoint: plain TCP, or TLS over it, and what
/// the client learns of it.
struct Stream {
    io: Io,
    state: Arc<ConnState>,
}

enum Io {
    Plain(Tcp),
    Tls(Box<tokio_rustls::client::TlsStream<Tcp>>),
}

/// What a connection has shown, shared by its stream and the client.
#[derive(Default)]
struct ConnState {
    /// The server sent something (its HTTP/2 settings): grpc-go's
    /// transport becomes ready only then.
    received: std::sync::atomic::AtomicBool,
}

/// A TCP stream written without vectored writes: `writev` (which rustls
/// uses for its records) cannot ask the kernel not to raise SIGPIPE, and
/// ferretctl keeps SIGPIPE's default (death) for its stdout, so a server
/// that closed the connection would kill it; `send`, which tokio uses for
/// one buffer, passes MSG_NOSIGNAL.
struct Tcp(TcpStream);

impl AsyncRead for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        let r = match &mut me.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if buf.filled().len() > before {
            me.state
                .received
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The connector tonic dials through: TCP (no delay, as grpc-go), then
/// the TLS handshake with `tls` for `name` when the client uses TLS.
fn connector(
    tls: Option<Arc<rustls::ClientConfig>>,
    name: Option<rustls::pki_types::ServerName<'static>>,
    state: Arc<ConnState>,
) -> impl tower::Service<
    http::Uri,
    Response = TokioIo<Stream>,
    Error = std::io::Error,
    Future = impl Future<Output = Result<TokioIo<Stream>, std::io::Error>> + Send,
> + Send
       + 'static {
    tower::service_fn(move |uri: http::Uri| {
        let tls = tls.clone();
        let name = name.clone();
        let state = state.clone();
        async move {
            let host = uri.host().unwrap_or("");
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = uri.port_u16().unwrap_or(80);
            let tcp = TcpStream::connect((host, port)).await?;
            let _ = tcp.set_nodelay(true);
            let (Some(cfg), Some(name)) = (tls, name) else {
                return Ok(TokioIo::new(Stream {
                    io: Io::Plain(Tcp(tcp)),
                    state,
                }));
            };
            let local = tcp.local_addr().map(|a| a.to_string()).unwrap_or_default();
            let peer = tcp.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            match tokio_rustls::TlsConnector::from(cfg)
                .connect(name, Tcp(tcp))
                .await
            {
                Ok(s) => Ok(TokioIo::new(Stream {
                    io: Io::Tls(Box::new(s)),
                    state,
                })),
                Err(e) => {
                    let text = match tls::find_rustls_error(&e) {
                        Some(t) => tls::go_text(t),
                        None if e.raw_os_error().is_some() => {
                            let op = if e.raw_os_error() == Some(libc::EPIPE) {
                                "write"
                            } else {
                                "read"
                            };
                            format!("{op} tcp {local}->{peer}: {op}: {}", errno_text(&e))
                        }
                        None => "EOF".to_string(),
                    };
                    Err(std::io::Error::other(HandshakeFailed(text)))
                }
            }
        }
    })
}

/// grpc-go's description of a failed connection to `ep`, from tonic's
/// error: `transport: authentication handshake failed: <Go's TLS error>`,
/// or `transport: Error while dialing dial tcp 127.0.0.1:1: connect:
/// connection refused`, naming the address the name resolved to, as Go
/// does.
async fn go_dial_error(ep: &str, e: &tonic::transport::Error) -> String {
    // A handshake that failed, somewhere in the chain of causes.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        let inner = c
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|i| i.downcast_ref::<HandshakeFailed>());
        if let Some(h) = inner.or_else(|| c.downcast_ref::<HandshakeFailed>()) {
            return format!("transport: authentication handshake failed: {}", h.0);
        }
        cause = c.source();
    }
    format!(
        "transport: Error while dialing {}",
        go_net_error(ep, e).await
    )
}

/// Go's `net.Dial` error for a failed TCP connection to `ep`.
async fn go_net_error(ep: &str, e: &tonic::transport::Error) -> String {
    let host = host_port(ep);
    let addr = match tokio::net::lookup_host(host).await {
        Ok(mut addrs) => match addrs.next() {
            Some(a) => a.to_string(),
            None => return format!("dial tcp: lookup {host}: no such host"),
        },
        Err(err) => return format!("dial tcp: lookup {host}: {err}"),
    };
    // The operating system's error, somewhere in the chain of causes.
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return match io.raw_os_error().and_then(go_errno_text) {
                Some(text) => format!("dial tcp {addr}: connect: {text}"),
                None if io.kind() == std::io::ErrorKind::TimedOut => {
                    format!("dial tcp {addr}: i/o timeout")
                }
                None => format!("dial tcp {addr}: connect: {io}"),
            };
        }
        cause = c.source();
    }
    // tonic's own connect timeout carries no OS error.
    format!("dial tcp {addr}: i/o timeout")
}

/// Go's `syscall.Errno` texts of the errors a TCP connect can end with.
fn go_errno_text(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::ECONNREFUSED => "connection refused",
        libc::ECONNRESET => "connection reset by peer",
        libc::EHOSTUNREACH => "no route to host",
        libc::ENETUNREACH => "network is unreachable",
        libc::ETIMEDOUT => "connection timed out",
        libc::EADDRNOTAVAIL => "cannot assign requested address",
        libc::EACCES => "permission denied",
        libc::EPERM => "operation not permitted",
        _ => return None,
    })
}

/// The error as etcdctl prints it: etcd's own errors by their text,
/// others as grpc-go's `rpc error: code = X desc = Y`.
pub fn error_text(st: &Status) -> String {
    if st.message().starts_with("etcdserver: ") {
        st.message().to_string()
    } else {
        go_status(st)
    }
}

/// grpc-go's `status.Error` text.
pub fn go_status(st: &Status) -> String {
    format!(
        "rpc error: code = {} desc = {}",
        go_code(st.code()),
        st.message()
    )
}

/// grpc-go's names of the status codes.
fn go_code(c: Code) -> &'static str {
    match c {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// Now as zap's ISO 8601 in UTC with milliseconds.
pub fn zap_time() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ns = now.as_nanos() as i64;
    let full = ferret_gocompat::json::format_rfc3339_nano(ns - ns % 1_000_000);
    // RFC 3339 with nanoseconds trimmed of zeros; zap prints exactly ms.
    let (date, rest) = full.split_once('T').unwrap_or((&full, ""));
    let time = rest.trim_end_matches('Z');
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    format!("{date}T{hms}.{:0<3}Z", &frac[..frac.len().min(3)])
}

/// Now as capnslog prints it (`2006-01-02 15:04:05.000000`), local time
/// taken as UTC.
fn capnslog_time() -> String {
    let z = zap_time();
    let (date, rest) = z.split_once('T').unwrap_or((&z, ""));
    let rest = rest.trim_end_matches('Z');
    format!("{date} {rest}000")
}

/// A random-looking version 4 UUID (clientv3 names each client with one),
/// from the clock and the process id: it only labels log lines.
fn pseudo_uuid() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut x = t ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (a, b) = (next(), next());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_etcdctl_prints_them() {
        let st = Status::new(Code::NotFound, "etcdserver: requested lease not found");
        assert_eq!(error_text(&st), "etcdserver: requested lease not found");
        let st = Status::new(Code::Cancelled, "context canceled");
        assert_eq!(
            error_text(&st),
            "rpc error: code = Canceled desc = context canceled"
        );
    }

    #[test]
    fn times_and_ids_have_their_shapes() {
        let z = zap_time();
        assert_eq!(z.len(), "2026-11-27T17:39:16.192Z".len(), "{z}");
        assert!(z.ends_with('Z'));
        let c = capnslog_time();
        assert_eq!(c.len(), "2026-11-27 17:39:46.953949".len(), "{c}");
        let u = pseudo_uuid();
        assert_eq!(u.len(), 36, "{u}");
        assert_eq!(&u[14..15], "4");
    }

    #[test]
    fn dial_errors_are_worded_as_gos() {
        assert_eq!(host_port("http://127.0.0.1:1"), "127.0.0.1:1");
        assert_eq!(host_port("127.0.0.1:1"), "127.0.0.1:1");
        assert_eq!(
            go_errno_text(libc::ECONNREFUSED),
            Some("connection refused")
        );
        assert_eq!(go_errno_text(0), None);
    }

    #[test]
    fn bare_endpoints_are_http() {
        assert_eq!(endpoint_url("127.0.0.1:2379"), "http://127.0.0.1:2379");
        assert_eq!(endpoint_url("http://a:1"), "http://a:1");
        assert_eq!(endpoint_url("https://a:1"), "http://a:1");
        assert_eq!(host_of("https://127.0.0.1:2379"), "127.0.0.1");
        assert_eq!(host_of("localhost:2379"), "localhost");
        assert_eq!(host_of("https://[::1]:2379"), "::1");
    }

    #[test]
    fn the_first_endpoints_scheme_decides_tls() {
        let cfg = tls::client_config(&tls::Files::default(), false, tls::Alpn::H2).unwrap();
        let some = Some(cfg);
        let eps = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let t = |e: &[&str], tls: &Option<Arc<rustls::ClientConfig>>| {
            transport_for(&eps(e), tls).unwrap().is_some()
        };
        assert!(!t(&["http://a:1", "https://b:1"], &some));
        assert!(t(&["https://a:1", "http://b:1"], &None));
        assert!(t(&["a:1"], &some));
        assert!(!t(&["a:1"], &None));
    }
}
