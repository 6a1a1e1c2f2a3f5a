//! etcd 3.4's JSON gateway: the v3 API as JSON over HTTP/1.1 under `/v3/`
//! (and `/v3beta/`, which 3.4 also serves), for clients that speak only
//! HTTP (Patroni's `etcd3` mode, python's `etcd3gw`, curl).
//!
//! As etcd's gateway (grpc-gateway v1, registered in its `embed`
//! package), this is a gRPC client of the member's own gRPC service: a
//! request's JSON body becomes the method's protobuf request, the call
//! goes over an in-memory HTTP/2 connection to the same gRPC service the
//! listeners serve (so every check a gRPC client meets applies, and a
//! TLS listener needs no client of its own; as in etcd, a gateway call
//! carries no client certificate), and the answer comes back as JSON.
//! The mapping is protobuf's JSON mapping as grpc-gateway's `JSONPb` with
//! `OrigName` writes it: proto field names (`range_end`), 64-bit integers
//! as strings, bytes as base64, enums by name, fields with their default
//! value left out (`count: 0`, `more: false`), no newline at the end.
//! Requests may use either field name form; unknown fields are ignored;
//! only the body's first JSON value is read, and an empty body (or
//! `null`) is an empty request, as grpc-gateway 1.6's decoder reads them
//! (the one Debian's etcd 3.4.23 is built with).
//!
//! - **Unary methods** answer `200` and the response's JSON; an error
//!   answers grpc-gateway's body `{"error":..,"message":..,"code":..}`
//!   with the HTTP status for its gRPC code (`http_status`).
//! - **Streams** (Watch, LeaseKeepAlive, Election Observe, Snapshot)
//!   read their requests from the body, one JSON value after another, and
//!   answer each response as `{"result":{..}}` and a newline, until the
//!   stream ends; an error ends it with `{"error":{..}}`, no newline. A
//!   first request that does not decode is grpc-gateway's `Unknown` (500).
//! - A path it does not know is `404 Not Found`, a known one with another
//!   method than `POST` is `405 Method Not Allowed` (plain text, as Go's
//!   `http.Error`).
//!
//! The messages' descriptors come from ferret-proto's
//! `FILE_DESCRIPTOR_SET` (etcd's own `.proto` files), read once.

use std::sync::{Arc, OnceLock};

use bytes::{Buf, BufMut, Bytes};
use ferret_proto::Message as _;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions,
};
use tokio::sync::mpsc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::api::http::body::Body;
use crate::api::http::request::read_body;
use crate::api::http::wire;

/// Opens a connection to the member's own gRPC service: one end of an
/// in-memory pipe whose other end the service serves (so a gateway call
/// meets every check a gRPC client's does, and needs no listener, nor
/// TLS to one).
pub type Dial = Box<dyn Fn() -> tokio::io::DuplexStream + Send + Sync>;

/// One route: the HTTP path (after `/v3`) and the gRPC method it calls.
struct Route {
    path: &'static str,
    service: &'static str,
    method: &'static str,
    streaming: bool,
}

const fn unary(path: &'static str, service: &'static str, method: &'static str) -> Route {
    Route {
        path,
        service,
        method,
        streaming: false,
    }
}

const fn stream(path: &'static str, service: &'static str, method: &'static str) -> Route {
    Route {
        path,
        service,
        method,
        streaming: true,
    }
}

const KV: &str = "etcdserverpb.KV";
const WATCH: &str = "etcdserverpb.Watch";
const LEASE: &str = "etcdserverpb.Lease";
const CLUSTER: &str = "etcdserverpb.Cluster";
const MAINTENANCE: &str = "etcdserverpb.Maintenance";
const AUTH: &str = "etcdserverpb.Auth";
const LOCK: &str = "v3lockpb.Lock";
const ELECTION: &str = "v3electionpb.Election";

/// etcd 3.4's routes (its generated `rpc.pb.gw.go`, `v3lock.pb.gw.go`,
/// `v3election.pb.gw.go`), all `POST`, in registration order: where two
/// share a path (`/maintenance/hash`), the first registered answers.
const ROUTES: &[Route] = &[
    unary("/kv/range", KV, "Range"),
    unary("/kv/put", KV, "Put"),
    unary("/kv/deleterange", KV, "DeleteRange"),
    unary("/kv/txn", KV, "Txn"),
    unary("/kv/compaction", KV, "Compact"),
    stream("/watch", WATCH, "Watch"),
    unary("/lease/grant", LEASE, "LeaseGrant"),
    unary("/lease/revoke", LEASE, "LeaseRevoke"),
    unary("/kv/lease/revoke", LEASE, "LeaseRevoke"),
    stream("/lease/keepalive", LEASE, "LeaseKeepAlive"),
    unary("/lease/timetolive", LEASE, "LeaseTimeToLive"),
    unary("/kv/lease/timetolive", LEASE, "LeaseTimeToLive"),
    unary("/lease/leases", LEASE, "LeaseLeases"),
    unary("/kv/lease/leases", LEASE, "LeaseLeases"),
    unary("/cluster/member/add", CLUSTER, "MemberAdd"),
    unary("/cluster/member/remove", CLUSTER, "MemberRemove"),
    unary("/cluster/member/update", CLUSTER, "MemberUpdate"),
    unary("/cluster/member/list", CLUSTER, "MemberList"),
    unary("/cluster/member/promote", CLUSTER, "MemberPromote"),
    unary("/maintenance/alarm", MAINTENANCE, "Alarm"),
    unary("/maintenance/status", MAINTENANCE, "Status"),
    unary("/maintenance/defragment", MAINTENANCE, "Defragment"),
    unary("/maintenance/hash", MAINTENANCE, "Hash"),
    stream("/maintenance/snapshot", MAINTENANCE, "Snapshot"),
    unary(
        "/maintenance/transfer-leadership",
        MAINTENANCE,
        "MoveLeader",
    ),
    unary("/auth/enable", AUTH, "AuthEnable"),
    unary("/auth/disable", AUTH, "AuthDisable"),
    unary("/auth/authenticate", AUTH, "Authenticate"),
    unary("/auth/user/add", AUTH, "UserAdd"),
    unary("/auth/user/get", AUTH, "UserGet"),
    unary("/auth/user/list", AUTH, "UserList"),
    unary("/auth/user/delete", AUTH, "UserDelete"),
    unary("/auth/user/changepw", AUTH, "UserChangePassword"),
    unary("/auth/user/grant", AUTH, "UserGrantRole"),
    unary("/auth/user/revoke", AUTH, "UserRevokeRole"),
    unary("/auth/role/add", AUTH, "RoleAdd"),
    unary("/auth/role/get", AUTH, "RoleGet"),
    unary("/auth/role/list", AUTH, "RoleList"),
    unary("/auth/role/delete", AUTH, "RoleDelete"),
    unary("/auth/role/grant", AUTH, "RoleGrantPermission"),
    unary("/auth/role/revoke", AUTH, "RoleRevokePermission"),
    unary("/lock/lock", LOCK, "Lock"),
    unary("/lock/unlock", LOCK, "Unlock"),
    unary("/election/campaign", ELECTION, "Campaign"),
    unary("/election/proclaim", ELECTION, "Proclaim"),
    unary("/election/leader", ELECTION, "Leader"),
    stream("/election/observe", ELECTION, "Observe"),
    unary("/election/resign", ELECTION, "Resign"),
];

/// etcd's descriptors, decoded once.
fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(ferret_proto::FILE_DESCRIPTOR_SET)
            .expect("ferret-proto's descriptor set decodes")
    })
}

/// A gRPC request with the client's token, if it sent one.
fn with_token<T>(t: T, token: Option<tonic::metadata::AsciiMetadataValue>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(t);
    if let Some(v) = token {
        r.metadata_mut().insert("authorization", v);
    }
    r
}

/// JSON (base64 values, field names) is larger than the protobuf it
/// becomes; the member's gRPC service enforces the message limit itself,
/// on the protobuf, as etcd's does. A body is read up to this many times
/// that limit, which bounds the memory one request takes.
const JSON_BODY_FACTOR: u64 = 4;

/// The gateway of one member: a gRPC channel to its own listener.
pub struct Gateway {
    channel: Channel,
    /// The gRPC message limit (`--max-request-bytes` and etcd's overhead).
    max_message_bytes: u64,
}

impl Gateway {
    /// `addr` is one of the member's client listeners (`host:port`); the
    /// channel connects when first used.
    pub fn new(dial: Dial, max_message_bytes: u64) -> Result<Gateway, String> {
        // The URI is only a name: every connection is `dial`'s.
        let connector = tower::service_fn(move |_: http::Uri| {
            let io = dial();
            async move { Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(io)) }
        });
        let channel =
            Endpoint::from_static("http://ferretcd.gateway").connect_with_connector_lazy(connector);
        Ok(Gateway {
            channel,
            max_message_bytes,
        })
    }

    /// Serves a path under `/v3/` or `/v3beta/` (given without the
    /// prefix: `/kv/range`).
    pub async fn handle(&self, req: Request<Incoming>, path: &str) -> Response<Body> {
        let Some(route) = ROUTES.iter().find(|r| r.path == path) else {
            return wire::text_error(StatusCode::NOT_FOUND, "Not Found");
        };
        if req.method() != Method::POST {
            // grpc-gateway's mux: a known path with another method.
            return wire::text_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        }
        let Some(method) = pool()
            .get_service_by_name(route.service)
            .and_then(|s| s.methods().find(|m| m.name() == route.method))
        else {
            return error_response(&Status::unimplemented(format!(
                "unknown method {}/{}",
                route.service, route.method
            )));
        };
        let grpc_path = format!("/{}/{}", route.service, route.method);
        // grpc-gateway passes the `Authorization` header on as the
        // `authorization` metadata, where etcd looks for a token too.
        let token = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| tonic::metadata::MetadataValue::try_from(v.as_bytes()).ok());
        let limit = self.max_message_bytes;
        let announced = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let body = match read_body(req.into_body(), limit * JSON_BODY_FACTOR).await {
            Ok(b) => b,
            // Past the bound: grpc-go's answer for a message over the
            // limit (with the body's size, as the message's is unknown).
            Err(_) => {
                return error_response(&Status::resource_exhausted(format!(
                    "grpc: received message larger than max ({} vs. {limit})",
                    announced.unwrap_or(limit * JSON_BODY_FACTOR + 1)
                )))
            }
        };
        if route.streaming {
            self.stream(body, &grpc_path, method.input(), method.output(), token)
                .await
        } else {
            self.unary(body, &grpc_path, method.input(), method.output(), token)
                .await
        }
    }

    async fn unary(
        &self,
        body: Bytes,
        grpc_path: &str,
        input: MessageDescriptor,
        output: MessageDescriptor,
        token: Option<tonic::metadata::AsciiMetadataValue>,
    ) -> Response<Body> {
        let request = match from_json(&input, &body) {
            Ok(r) => r,
            Err(st) => return error_response(&st),
        };
        let (mut grpc, path) = match self.client(grpc_path).await {
            Ok(c) => c,
            Err(st) => return error_response(&st),
        };
        match grpc.unary(with_token(request, token), path, RawCodec).await {
            Ok(resp) => match to_json(&output, resp.get_ref()) {
                Ok(json) => wire::json(StatusCode::OK, json),
                Err(st) => error_response(&st),
            },
            Err(st) => error_response(&st),
        }
    }

    /// A gRPC client of the member's own listener, ready, and the method's
    /// path.
    async fn client(
        &self,
        grpc_path: &str,
    ) -> Result<(tonic::client::Grpc<Channel>, http::uri::PathAndQuery), Status> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::try_from(grpc_path)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok((grpc, path))
    }

    /// A stream: the body's JSON values are its requests, sent, then the
    /// request stream ends; each response is a line of `{"result":..}`.
    async fn stream(
        &self,
        body: Bytes,
        grpc_path: &str,
        input: MessageDescriptor,
        output: MessageDescriptor,
        token: Option<tonic::metadata::AsciiMetadataValue>,
    ) -> Response<Body> {
        // The first request must decode (grpc-gateway returns its error
        // unwrapped: Unknown); reading stops quietly at a later one that
        // does not.
        let mut requests = Vec::new();
        let de = serde_json::Deserializer::from_slice(&body).into_iter::<serde_json::Value>();
        for value in de {
            let decoded = value
                .map_err(|e| Status::unknown(e.to_string()))
                .and_then(|v| {
                    from_json_value(&input, v).map_err(|st| Status::unknown(st.message()))
                });
            match decoded {
                Ok(r) => requests.push(r),
                Err(st) if requests.is_empty() => return error_response(&st),
                Err(_) => break,
            }
        }
        let (mut grpc, path) = match self.client(grpc_path).await {
            Ok(c) => c,
            Err(st) => return error_response(&st),
        };
        // The requests, then the end of the request stream (grpc-gateway's
        // CloseSend once the body is read): a keep-alive stream then ends
        // after its answers; a watch stays until the client goes away.
        let outgoing = tokio_stream::iter(requests);
        let mut responses = match grpc
            .streaming(with_token(outgoing, token), path, RawCodec)
            .await
        {
            Ok(r) => r.into_inner(),
            Err(st) => return error_response(&st),
        };
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        tokio::spawn(async move {
            loop {
                let line = match responses.message().await {
                    Ok(Some(msg)) => match to_json(&output, &msg) {
                        Ok(json) => {
                            let mut line = b"{\"result\":".to_vec();
                            line.extend_from_slice(&json);
                            line.extend_from_slice(b"}\n");
                            line
                        }
                        Err(st) => stream_error(&st),
                    },
                    Ok(None) => break,
                    Err(st) => stream_error(&st),
                };
                let last = line.starts_with(b"{\"error\"");
                if tx.send(Bytes::from(line)).await.is_err() || last {
                    break;
                }
            }
        });
        let mut resp = Response::new(Body::Stream(rx));
        resp.headers_mut()
            .insert(hyper::header::CONTENT_TYPE, wire::JSON);
        resp
    }
}

/// A request body as the method's protobuf request: its first JSON
/// value (an empty body or `null`: an empty request), unknown fields
/// ignored, as grpc-gateway 1.6 decodes it.
fn from_json(input: &MessageDescriptor, body: &[u8]) -> Result<Bytes, Status> {
    let first = serde_json::Deserializer::from_slice(body)
        .into_iter::<serde_json::Value>()
        .next();
    match first {
        None => from_json_value(input, serde_json::Value::Null),
        Some(Ok(v)) => from_json_value(input, v),
        Some(Err(e)) => Err(Status::invalid_argument(e.to_string())),
    }
}

fn from_json_value(input: &MessageDescriptor, value: serde_json::Value) -> Result<Bytes, Status> {
    if value.is_null() {
        return Ok(Bytes::new());
    }
    let opts = DeserializeOptions::new().deny_unknown_fields(false);
    let msg = DynamicMessage::deserialize_with_options(input.clone(), value, &opts)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(Bytes::from(msg.encode_to_vec()))
}

/// A protobuf response as grpc-gateway's JSON.
fn to_json(output: &MessageDescriptor, bytes: &[u8]) -> Result<Vec<u8>, Status> {
    let msg = DynamicMessage::decode(output.clone(), bytes)
        .map_err(|e| Status::internal(format!("an undecodable response: {e}")))?;
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut out);
    let opts = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(true)
        .stringify_64_bit_integers(true);
    msg.serialize_with_options(&mut ser, &opts)
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(out)
}

/// grpc-gateway 1.6's error body, with the HTTP status for the code.
fn error_response(st: &Status) -> Response<Body> {
    // Its fields in that release's order.
    let msg = serde_json::Value::from(st.message()).to_string();
    let body = format!(
        "{{\"error\":{msg},\"message\":{msg},\"code\":{}}}",
        st.code() as i32
    );
    wire::json(http_status(st.code()), body)
}

/// grpc-gateway's error in a stream (its last bytes: no newline).
fn stream_error(st: &Status) -> Vec<u8> {
    let status = http_status(st.code());
    let text = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "{{\"error\":{{\"grpc_code\":{},\"http_code\":{},\"message\":{},\"http_status\":{}}}}}",
        st.code() as i32,
        status.as_u16(),
        text(st.message()),
        text(status.canonical_reason().unwrap_or("")),
    )
    .into_bytes()
}

/// grpc-gateway's `HTTPStatusFromCode`.
fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::Aborted => StatusCode::CONFLICT,
        Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Messages as their encoded bytes: the gateway converts JSON itself.
#[derive(Clone, Copy, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The gateway for `Api`: shared, built once the listeners are known.
pub type Shared = Arc<OnceLock<Gateway>>;
