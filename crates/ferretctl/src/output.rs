//! etcdctl's output formats (`printResponseKey`): `simple`, `extended`
//! and `json`, the latter byte for byte as Go's encoding/json writes
//! etcd's client.Response (field order, `null`s, HTML-safe escapes).

use std::io::Write;

// Strings as Go's encoding/json writes them: `<`, `>`, `&`, U+2028 and
// U+2029 escaped as `\u....`, control characters as `\n`, `\r`, `\t` or
// `\u00XX` (Go 1.19, which etcdctl 3.4.23 is built with, has no `\b`/`\f`).
use ferret_gocompat::json::quote as go_json_string;

use crate::api::{KeysResponse, Node};

fn node_json(n: &Node, out: &mut String) {
    out.push_str("{\"key\":");
    out.push_str(&go_json_string(&n.key));
    if n.dir {
        out.push_str(",\"dir\":true");
    }
    out.push_str(",\"value\":");
    out.push_str(&go_json_string(&n.value));
    out.push_str(",\"nodes\":");
    match &n.nodes {
        None => out.push_str("null"),
        Some(nodes) => {
            out.push('[');
            for (i, child) in nodes.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                node_json(child, out);
            }
            out.push(']');
        }
    }
    out.push_str(&format!(
        ",\"createdIndex\":{},\"modifiedIndex\":{}",
        n.created_index, n.modified_index
    ));
    if let Some(e) = &n.expiration {
        out.push_str(",\"expiration\":");
        out.push_str(&go_json_string(e));
    }
    if n.ttl != 0 {
        out.push_str(&format!(",\"ttl\":{}", n.ttl));
    }
    out.push('}');
}

/// `json.Marshal` of etcd's client.Response (the index is not part of it).
pub fn response_json(r: &KeysResponse) -> String {
    let mut out = String::from("{\"action\":");
    out.push_str(&go_json_string(&r.action));
    out.push_str(",\"node\":");
    node_json(&r.node, &mut out);
    out.push_str(",\"prevNode\":");
    match &r.prev_node {
        Some(p) => node_json(p, &mut out),
        None => out.push_str("null"),
    }
    out.push('}');
    out
}

/// etcdctl's `printResponseKey` in the given format, to stdout.
pub fn print_response_key(r: &KeysResponse, format: &str) {
    let mut o = std::io::stdout().lock();
    let text = match format {
        "simple" => {
            if r.action != "delete" {
                format!("{}\n", r.node.value)
            } else {
                let prev = r.prev_node.as_ref().map(|p| p.value.as_str()).unwrap_or("");
                format!("PrevNode.Value: {prev}\n")
            }
        }
        "extended" => {
            let mut s = format!(
                "Key: {}\nCreated-Index: {}\nModified-Index: {}\n",
                r.node.key, r.node.created_index, r.node.modified_index
            );
            if let Some(p) = &r.prev_node {
                s.push_str(&format!("PrevNode.Value: {}\n", p.value));
            }
            s.push_str(&format!("TTL: {}\nIndex: {}\n", r.node.ttl, r.index));
            if r.action != "delete" {
                s.push_str(&format!("\n{}\n", r.node.value));
            }
            s
        }
        "json" => format!("{}\n", response_json(r)),
        other => {
            eprintln!("Unsupported output format: {other}");
            return;
        }
    };
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_like_go() {
        assert_eq!(
            go_json_string("a<b>&\"\\\n\u{1}é"),
            "\"a\\u003cb\\u003e\\u0026\\\"\\\\\\n\\u0001é\""
        );
        let r = KeysResponse {
            action: "set".into(),
            node: Node {
                key: "/foo".into(),
                value: "q".into(),
                created_index: 6,
                modified_index: 6,
                ..Node::default()
            },
            prev_node: None,
            index: 6,
        };
        assert_eq!(
            response_json(&r),
            r#"{"action":"set","node":{"key":"/foo","value":"q","nodes":null,"createdIndex":6,"modifiedIndex":6},"prevNode":null}"#
        );
    }
}
