//! Events and node views: what a v2 operation returns and what watchers see.

use ferret_gocompat::json;

/// What happened to a node. The names are the `action` strings on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Get,
    Create,
    Set,
    Update,
    Delete,
    CompareAndSwap,
    CompareAndDelete,
    Expire,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Get => "get",
            Action::Create => "create",
            Action::Set => "set",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::CompareAndSwap => "compareAndSwap",
            Action::CompareAndDelete => "compareAndDelete",
            Action::Expire => "expire",
        }
    }
}

/// A node as clients see it (etcd's `NodeExtern`). Empty fields are omitted
/// from the JSON, as Go's `omitempty` does: a root listing has no `key`, a
/// permanent key no `expiration`, an empty directory no `nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeView {
    /// The full store path, namespace prefix included (e.g. `/1/foo`).
    pub key: Box<[u8]>,
    /// The value of a key; `None` for directories and for delete events.
    pub value: Option<Box<[u8]>>,
    pub dir: bool,
    /// Absolute expiry time, Unix nanoseconds; `None` when permanent.
    pub expiration_ns: Option<i64>,
    /// Seconds left until expiry when the view was taken, rounded up.
    pub ttl_s: i64,
    /// Children of a directory, for listings.
    pub nodes: Vec<NodeView>,
    pub modified_index: u64,
    pub created_index: u64,
}

impl NodeView {
    /// Appends the node as etcd's JSON, with `strip_prefix` removed from the
    /// front of every key (the HTTP layer hides the keys namespace `/1`).
    pub fn write_json(&self, out: &mut Vec<u8>, strip_prefix: &[u8]) {
        out.push(b'{');
        let mut first = true;
        let mut field = |out: &mut Vec<u8>, name: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        };
        let key = self.key.strip_prefix(strip_prefix).unwrap_or(&self.key);
        if !key.is_empty() {
            field(out, "key");
            json::write_str(out, key);
        }
        if let Some(v) = &self.value {
            field(out, "value");
            json::write_str(out, v);
        }
        if self.dir {
            field(out, "dir");
            out.extend_from_slice(b"true");
        }
        if let Some(ns) = self.expiration_ns {
            field(out, "expiration");
            json::write_time(out, ns);
        }
        if self.ttl_s != 0 {
            field(out, "ttl");
            json::write_i64(out, self.ttl_s);
        }
        if !self.nodes.is_empty() {
            field(out, "nodes");
            out.push(b'[');
            for (i, n) in self.nodes.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                n.write_json(out, strip_prefix);
            }
            out.push(b']');
        }
        if self.modified_index != 0 {
            field(out, "modifiedIndex");
            json::write_u64(out, self.modified_index);
        }
        if self.created_index != 0 {
            field(out, "createdIndex");
            json::write_u64(out, self.created_index);
        }
        out.push(b'}');
    }
}

/// The result of an operation, and the unit of the watch history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub action: Action,
    pub node: NodeView,
    pub prev_node: Option<NodeView>,
    /// The store index after the operation (the `X-Etcd-Index` header).
    pub etcd_index: u64,
    /// A TTL refresh: recorded in the history, never sent to watchers.
    /// Not part of the JSON: etcd copies events before writing them and the
    /// copy drops this flag, so clients never see it.
    pub refresh: bool,
}

impl Event {
    pub(crate) fn new(action: Action, key: &[u8], modified_index: u64, created_index: u64) -> Self {
        Event {
            action,
            node: NodeView {
                key: key.into(),
                modified_index,
                created_index,
                ..NodeView::default()
            },
            prev_node: None,
            etcd_index: 0,
            refresh: false,
        }
    }

    /// The index that orders events: the modified index of the node.
    pub fn index(&self) -> u64 {
        self.node.modified_index
    }

    /// Whether the operation created the node (HTTP 201 rather than 200).
    pub fn is_created(&self) -> bool {
        match self.action {
            Action::Create => true,
            Action::Set => self.prev_node.is_none(),
            _ => false,
        }
    }

    /// Appends the event as etcd's JSON body, with its trailing newline.
    /// `omit_nodes` drops `node` and `prevNode` (the `noValueOnSuccess`
    /// parameter), leaving `{"action":"set"}`.
    pub fn write_json(&self, out: &mut Vec<u8>, strip_prefix: &[u8], omit_nodes: bool) {
        out.extend_from_slice(b"{\"action\":");
        json::write_str(out, self.action.as_str().as_bytes());
        if !omit_nodes {
            out.extend_from_slice(b",\"node\":");
            self.node.write_json(out, strip_prefix);
            if let Some(prev) = &self.prev_node {
                out.extend_from_slice(b",\"prevNode\":");
                prev.write_json(out, strip_prefix);
            }
        }
        out.extend_from_slice(b"}\n");
    }

    /// The event as a JSON string (convenience for tests and tools).
    pub fn to_json_string(&self, strip_prefix: &[u8]) -> String {
        let mut out = Vec::new();
        self.write_json(&mut out, strip_prefix, false);
        String::from_utf8_lossy(&out).into_owned()
    }
}
