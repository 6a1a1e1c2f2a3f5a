//! The cluster client: a list of endpoints, the rule for moving from one
//! to the next, membership sync, and the errors etcdctl prints.
//!
//! **Failover invariant.** A request moves on to the next endpoint only if
//! the server could not have acted on it: a read (GET) may be retried after
//! any failure, a write (PUT, POST, DELETE) only after a failure to connect.
//! A write that was sent and then timed out, lost its connection or got a
//! 5xx answer is reported as having an unknown outcome and is not sent
//! again: a compare-and-swap retried elsewhere could apply twice. (etcd's
//! own Go client retries such writes, except create and delete; this is the
//! one deliberate difference in behaviour.)

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http::{self, Endpoint, Failure, Head, Limits, Pending, Request};

/// What the client may do with a request that got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Reading changes nothing: any endpoint may be asked again.
    Read,
    /// May change state: retried only if it never left this machine.
    Write,
}

/// One endpoint's failure inside a [`Error::Cluster`].
#[derive(Clone, Debug)]
pub struct EndpointError {
    pub text: String,
    /// Go's `isConnectionError`: dial and read failures, not timeouts of
    /// the response head nor 5xx answers. Decides sync's exit code.
    pub connection: bool,
    /// The request was sent before the connection failed or timed out.
    pub after_send: bool,
}

/// Errors as etcdctl's client library reports them; `Display` gives the
/// exact text etcdctl prints after `Error:  `.
#[derive(Clone, Debug)]
pub enum Error {
    /// An etcd v2 error body: `100: Key not found (/foo) [7]`.
    Etcd {
        code: i64,
        message: String,
        cause: String,
        index: u64,
    },
    /// Every endpoint failed (client.ClusterError).
    Cluster(Vec<EndpointError>),
    /// The command's total timeout passed (Go's context error).
    Deadline,
    /// A write was sent and no answer came: it may or may not have applied.
    OutcomeUnknown { endpoint: String, cause: String },
    /// Sync found members without client URLs (client.ErrNoEndpoints).
    NoEndpoints,
    /// Any other message, printed as is.
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Etcd {
                code,
                message,
                cause,
                index,
            } => write!(f, "{code}: {message} ({cause}) [{index}]"),
            Error::Cluster(errs) => {
                write!(f, "client: etcd cluster is unavailable or misconfigured")?;
                for (i, e) in errs.iter().enumerate() {
                    writeln!(f, "; error #{i}: {}", e.text)?;
                }
                Ok(())
            }
            Error::Deadline => write!(f, "context deadline exceeded"),
            Error::OutcomeUnknown { endpoint, cause } => write!(
                f,
                "{cause}; the request reached {endpoint}, which did not say whether it was \
                 applied: its outcome is unknown, so it was not retried on another endpoint"
            ),
            Error::NoEndpoints => write!(f, "client: no endpoints available"),
            Error::Other(s) => f.write_str(s),
        }
    }
}

impl Error {
    /// client.ClusterError's `Detail()`, printed on its own after the error.
    pub fn detail(&self) -> Option<String> {
        match self {
            Error::Cluster(errs) => Some(
                errs.iter()
                    .enumerate()
                    .map(|(i, e)| format!("error #{i}: {}\n", e.text))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// etcdctl's `isConnectionError` (Go's context deadline is a timeout
    /// net.Error, so it counts).
    pub fn is_connection_error(&self) -> bool {
        match self {
            Error::Cluster(errs) => errs.iter().all(|e| e.connection),
            Error::Deadline => true,
            _ => false,
        }
    }
}

/// Settings shared by every request of one command.
#[derive(Clone, Debug)]
pub struct Config {
    pub endpoints: Vec<Endpoint>,
    /// `--timeout`: connect plus wait for the response head (not for watches).
    pub header_timeout: Duration,
    /// Connect limit: 30 s as etcdctl, capped by `--total-timeout`.
    pub dial_timeout: Duration,
    pub credentials: Option<(String, String)>,
    /// `--debug`: print each request as a curl command on stderr.
    pub debug: bool,
    /// TLS for the https endpoints (`--ca-file`, `--cert-file`,
    /// `--key-file`; the system's roots without `--ca-file`).
    pub tls: Arc<rustls::ClientConfig>,
}

pub struct Client {
    cfg: Config,
    /// Index of the endpoint that answered last; tried first next time.
    pinned: usize,
}

/// What a request needs besides the endpoint: built anew for each endpoint
/// because the URL carries the endpoint's address and path prefix.
pub struct Action {
    pub method: &'static str,
    /// Path below the endpoint (`/v2/keys/foo`), already escaped.
    pub path: String,
    /// Encoded query, without `?` ("" for none).
    pub query: String,
    pub content_type: Option<&'static str>,
    pub body: Option<Vec<u8>>,
}

impl Action {
    pub fn get(path: String, query: String) -> Action {
        Action {
            method: "GET",
            path,
            query,
            content_type: None,
            body: None,
        }
    }

    fn url_for(&self, ep: &Endpoint) -> (String, String) {
        let mut path_and_query = format!("{}{}", ep.path, self.path);
        if !self.query.is_empty() {
            path_and_query.push('?');
            path_and_query.push_str(&self.query);
        }
        let full = format!(
            "{}{}",
            ep.url().trim_end_matches(&ep.path[..]),
            path_and_query
        );
        (path_and_query, full)
    }
}

impl Client {
    pub fn new(cfg: Config) -> Client {
        Client { cfg, pinned: 0 }
    }

    /// The TLS configuration, for requests made outside the client
    /// (`cluster-health`'s checks).
    pub fn tls(&self) -> &Arc<rustls::ClientConfig> {
        &self.cfg.tls
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.cfg.endpoints.iter().map(Endpoint::url).collect()
    }

    /// Sends `act`, moving through the endpoints as the failover invariant
    /// allows, and returns the first non-5xx answer with its whole body.
    pub fn call(
        &mut self,
        act: &Action,
        retry: Retry,
        deadline: Option<Instant>,
    ) -> Result<(Head, Vec<u8>), Error> {
        let header_timeout = Some(self.cfg.header_timeout);
        self.each_endpoint(|client, k| {
            let (pending, url) = client.attempt(k, act, retry, deadline, header_timeout)?;
            let head = pending.head.clone();
            match pending.read_body(deadline) {
                Ok(body) => Ok((head, body)),
                Err(f) => Err(classify(f, url, retry)),
            }
        })
    }

    /// Like [`Client::call`] for a watch: no limit on the wait for the
    /// response, and the body left on the wire for the caller to read.
    /// Returns the endpoint's URL with the response.
    pub fn open_stream(&mut self, act: &Action) -> Result<(Pending, String), Error> {
        self.each_endpoint(|client, k| client.attempt(k, act, Retry::Read, None, None))
    }

    /// Runs `f` on each endpoint from the pinned one on until one succeeds
    /// or fails for good; pins the one that answered.
    fn each_endpoint<T>(
        &mut self,
        mut f: impl FnMut(&Client, usize) -> Result<T, Attempt>,
    ) -> Result<T, Error> {
        let n = self.cfg.endpoints.len();
        if n == 0 {
            return Err(Error::NoEndpoints);
        }
        let mut errors = Vec::new();
        for i in self.pinned..self.pinned + n {
            let k = i % n;
            match f(self, k) {
                Ok(v) => {
                    self.pinned = k;
                    return Ok(v);
                }
                Err(Attempt::Next(e)) => errors.push(e),
                Err(Attempt::Stop(e)) => {
                    self.pinned = (k + 1) % n;
                    return Err(e);
                }
            }
        }
        Err(Error::Cluster(errors))
    }

    /// One request to endpoint `k`, up to the response head.
    fn attempt(
        &self,
        k: usize,
        act: &Action,
        retry: Retry,
        deadline: Option<Instant>,
        header_timeout: Option<Duration>,
    ) -> Result<(Pending, String), Attempt> {
        let ep = &self.cfg.endpoints[k];
        let (path_and_query, full_url) = act.url_for(ep);
        if self.cfg.debug {
            let mut line = format!("cURL Command: curl -X {} {}", act.method, full_url);
            if let Some(b) = &act.body {
                line.push_str(&format!(" -d {}", ferret_gocompat::strconv::quote(b)));
            }
            eprintln!("{line}");
        }
        let req = Request {
            method: act.method,
            path_and_query,
            content_type: act.content_type,
            body: act.body.clone(),
            basic_auth: self.cfg.credentials.clone(),
        };
        let limits = Limits {
            dial_timeout: self.cfg.dial_timeout,
            header_timeout,
            deadline,
        };
        let url = ep.url();
        match http::send(ep, &req, limits, &self.cfg.tls) {
            Ok(p) if p.head.status / 100 == 5 => {
                let text = if p.head.status == 500 || p.head.status == 503 {
                    format!("client: etcd member {url} has no leader")
                } else {
                    format!(
                        "client: etcd member {url} returns server error [{}]",
                        status_text(p.head.status)
                    )
                };
                if retry == Retry::Write {
                    // The server answered, but a 5xx does not tell whether
                    // the write was applied (etcd's "request timed out"
                    // may still commit); its own words go with the error.
                    let body = p.read_body(deadline).unwrap_or_default();
                    let said = server_message(&body)
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default();
                    return Err(Attempt::Stop(Error::OutcomeUnknown {
                        endpoint: url,
                        cause: format!("{text}{said}"),
                    }));
                }
                Err(Attempt::Next(EndpointError {
                    text,
                    connection: false,
                    after_send: true,
                }))
            }
            Ok(p) => Ok((p, url)),
            Err(f) => Err(classify(f, url, retry)),
        }
    }

    /// Replaces the endpoints (after a sync), starting again from the first.
    pub fn set_endpoints(&mut self, endpoints: Vec<Endpoint>) {
        self.cfg.endpoints = endpoints;
        self.pinned = 0;
    }
}

/// How one endpoint's failure is handled, by the failover invariant.
enum Attempt {
    /// Try the next endpoint; the error joins the cluster error.
    Next(EndpointError),
    /// Stop here and report this.
    Stop(Error),
}

fn classify(f: Failure, url: String, retry: Retry) -> Attempt {
    match f {
        Failure::Deadline { sent } => Attempt::Stop(if sent && retry == Retry::Write {
            Error::OutcomeUnknown {
                endpoint: url,
                cause: "context deadline exceeded".into(),
            }
        } else {
            Error::Deadline
        }),
        f if f.maybe_delivered() && retry == Retry::Write => Attempt::Stop(Error::OutcomeUnknown {
            cause: failure_text(&f, &url),
            endpoint: url,
        }),
        f => Attempt::Next(EndpointError {
            // Go's io.EOF (a server that closed at once, as a TLS port
            // does to a plain client) is no net.Error.
            connection: match &f {
                Failure::Dial(_) => true,
                Failure::AfterSend(s) => s != "EOF",
                _ => false,
            },
            after_send: f.maybe_delivered(),
            text: failure_text(&f, &url),
        }),
    }
}

fn failure_text(f: &Failure, url: &str) -> String {
    match f {
        Failure::Dial(s) | Failure::Handshake(s) | Failure::AfterSend(s) => s.clone(),
        Failure::HeaderTimeout => format!("client: endpoint {url} exceeded header timeout"),
        Failure::Deadline { .. } => "context deadline exceeded".into(),
    }
}

/// The `message` (and `cause`) of an error body, if it has one.
fn server_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let m = v.get("message")?.as_str()?.to_string();
    match v.get("cause").and_then(|c| c.as_str()) {
        Some(c) if !c.is_empty() => Some(format!("{m}: {c}")),
        _ => Some(m),
    }
}

/// Go's `http.StatusText` for the 5xx codes.
fn status_text(code: u16) -> &'static str {
    match code {
        501 => "Not Implemented",
        502 => "Bad Gateway",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}
