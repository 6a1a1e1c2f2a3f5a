//! JSON rendering of events and errors, and determinism of `apply`.

use super::*;
use crate::event::{Action, NodeView};
use crate::{Code, Method, Write};

fn render(e: &Event, strip: &[u8], omit: bool) -> String {
    let mut out = Vec::new();
    e.write_json(&mut out, strip, omit);
    String::from_utf8(out).unwrap()
}

#[test]
fn event_json_ends_with_newline() {
    let mut s = store();
    let e = set(&mut s, "/a", "1");
    assert!(render(&e, b"/1", false).ends_with("}\n"));
}

#[test]
fn full_node_field_order() {
    let mut s = store();
    s.set(&k("/a"), false, b"1", ttl(7), NOW).unwrap();
    let e = s.set(&k("/a"), false, b"2", ttl(9), NOW).unwrap();
    assert_eq!(
        js(&e),
        concat!(
            r#"{"action":"set","node":{"key":"/a","value":"2","expiration":"2023-11-14T22:13:29Z","ttl":9,"modifiedIndex":2,"createdIndex":2},"#,
            r#""prevNode":{"key":"/a","value":"1","expiration":"2023-11-14T22:13:27Z","ttl":7,"modifiedIndex":1,"createdIndex":1}}"#
        )
    );
}

#[test]
fn empty_fields_are_omitted() {
    let e = Event {
        action: Action::Get,
        node: NodeView::default(),
        prev_node: None,
        etcd_index: 9,
        refresh: false,
    };
    assert_eq!(render(&e, b"", false), "{\"action\":\"get\",\"node\":{}}\n");
}

#[test]
fn prefix_is_stripped_from_every_key() {
    let mut s = store();
    set(&mut s, "/d/x", "1");
    let e = s.get(&k("/d"), true, NOW).unwrap();
    let json = render(&e, b"/1", false);
    assert!(
        json.contains(r#""key":"/d","#) && json.contains(r#""key":"/d/x","#),
        "{json}"
    );
    assert!(!json.contains("/1/"));
    let e = set(&mut s, "/d/x", "2");
    assert_eq!(
        render(&e, b"/1", false).matches(r#""key":"/d/x""#).count(),
        2
    );
}

#[test]
fn no_prefix_keeps_full_keys() {
    let mut s = store();
    let e = set(&mut s, "/a", "1");
    assert!(render(&e, b"", false).contains(r#""key":"/1/a""#));
}

#[test]
fn no_value_on_success_is_action_only() {
    let mut s = store();
    set(&mut s, "/a", "1");
    let e = set(&mut s, "/a", "2");
    assert_eq!(render(&e, b"/1", true), "{\"action\":\"set\"}\n");
}

#[test]
fn refresh_flag_is_never_rendered() {
    // etcd writes a copy of the event that drops the flag.
    let mut s = store();
    s.set(&k("/a"), false, b"1", ttl(5), NOW).unwrap();
    let e = s.set(&k("/a"), false, b"", refresh(5), NOW).unwrap();
    assert!(e.refresh);
    assert_eq!(render(&e, b"/1", true), "{\"action\":\"set\"}\n");
    assert!(!js(&e).contains("refresh"), "{}", js(&e));
}

#[test]
fn html_characters_are_escaped_like_go() {
    let mut s = store();
    let e = s
        .set(&k("/a<b>&c"), false, b"<script>&amp;</script>", perm(), NOW)
        .unwrap();
    assert_eq!(
        js(&e),
        r#"{"action":"set","node":{"key":"/a\u003cb\u003e\u0026c","value":"\u003cscript\u003e\u0026amp;\u003c/script\u003e","modifiedIndex":1,"createdIndex":1}}"#
    );
}

#[test]
fn control_and_separator_characters_are_escaped_like_go() {
    let mut s = store();
    let e = s
        .set(
            &k("/a"),
            false,
            "q\"b\\\n\t\x00\u{2028}é".as_bytes(),
            perm(),
            NOW,
        )
        .unwrap();
    assert!(
        js(&e).contains(r#""value":"q\"b\\\n\t\u0000\u2028é""#),
        "{}",
        js(&e)
    );
}

#[test]
fn invalid_utf8_value_is_one_replacement_per_byte() {
    let mut s = store();
    let e = s
        .set(&k("/a"), false, b"x\xff\xfey\xe2\x82", perm(), NOW)
        .unwrap();
    assert!(
        js(&e).contains(r#""value":"x\ufffd\ufffdy\ufffd\ufffd""#),
        "{}",
        js(&e)
    );
    // The stored bytes are untouched.
    let n = s.get(&k("/a"), false, NOW).unwrap().node;
    assert_eq!(n.value.as_deref(), Some(&b"x\xff\xfey\xe2\x82"[..]));
}

#[test]
fn invalid_utf8_key_is_escaped() {
    let mut s = store();
    let e = s.set(b"/1/\xff", false, b"v", perm(), NOW).unwrap();
    assert!(js(&e).contains(r#""key":"/\ufffd""#), "{}", js(&e));
}

#[test]
fn expiration_keeps_significant_fraction_digits() {
    let mut s = store();
    let e = s
        .set(
            &k("/a"),
            false,
            b"v",
            TtlOptions {
                expire_ns: Some(NOW + 1_000_000_123),
                refresh: false,
            },
            NOW,
        )
        .unwrap();
    assert!(
        js(&e).contains(r#""expiration":"2023-11-14T22:13:21.000000123Z","ttl":2,"#),
        "{}",
        js(&e)
    );
}

#[test]
fn error_json_without_cause_omits_it() {
    let e = Error::new(Code::RaftInternal, "", 3);
    assert_eq!(
        ejs(&e),
        r#"{"errorCode":300,"message":"Raft Internal Error","index":3}"#
    );
}

#[test]
fn error_json_escapes_cause() {
    let mut s = store();
    set(&mut s, "/a", "<v>");
    let err = s
        .compare_and_swap(&k("/a"), b"&", 0, b"x", perm(), NOW)
        .unwrap_err();
    assert_eq!(
        ejs(&err),
        r#"{"errorCode":101,"message":"Compare failed","cause":"[\u0026 != \u003cv\u003e]","index":1}"#
    );
}

#[test]
fn store_stats_json_is_a_flat_object() {
    let s = store();
    let v: serde_json::Value = serde_json::from_slice(&s.stats_json()).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 16);
}

// ----- determinism ------------------------------------------------------

fn w(method: Method, p: &str, value: &str) -> Write {
    Write {
        method,
        path: k(p),
        value: value.as_bytes().to_vec(),
        dir: false,
        prev_value: Vec::new(),
        prev_index: 0,
        prev_exist: None,
        recursive: false,
        refresh: false,
        expire_ns: None,
        time_ns: NOW,
    }
}

fn script() -> Vec<Write> {
    let mut v = vec![
        w(Method::Put, "/a", "1"),
        Write {
            dir: true,
            ..w(Method::Put, "/dir", "")
        },
        Write {
            expire_ns: Some(NOW + 5 * NS),
            ..w(Method::Put, "/dir/t", "x")
        },
        w(Method::Post, "/queue", "job1"),
        w(Method::Post, "/queue", "job2"),
        Write {
            prev_exist: Some(false),
            ..w(Method::Put, "/a", "dup")
        },
        Write {
            prev_value: b"1".to_vec(),
            ..w(Method::Put, "/a", "2")
        },
        Write {
            prev_index: 99,
            ..w(Method::Put, "/a", "3")
        },
        Write {
            prev_exist: Some(true),
            ..w(Method::Put, "/missing", "3")
        },
        Write {
            prev_exist: Some(true),
            refresh: true,
            expire_ns: Some(NOW + 60 * NS),
            time_ns: NOW + NS,
            ..w(Method::Put, "/dir/t", "")
        },
        Write {
            expire_ns: Some(NOW + 2 * NS),
            ..w(Method::Put, "/b/c/d", "deep")
        },
        w(Method::Delete, "/dir", ""),
        Write {
            recursive: true,
            ..w(Method::Delete, "/queue", "")
        },
        Write {
            prev_value: b"2".to_vec(),
            ..w(Method::Delete, "/a", "")
        },
    ];
    for i in 0..30 {
        v.push(w(Method::Put, &format!("/many/{}", i % 7), &i.to_string()));
    }
    v
}

/// Applies the script, sweeping expiries as a leader would, and renders
/// every result and the final tree.
fn run(script: &[Write]) -> Vec<String> {
    let mut s = store();
    let mut out = Vec::new();
    for (i, wr) in script.iter().enumerate() {
        match s.apply(wr) {
            Ok(e) => out.push(format!("{} {}", e.etcd_index, render(&e, b"/1", false))),
            Err(e) => out.push(String::from_utf8(e.to_json()).unwrap()),
        }
        if i == 12 {
            for e in s.delete_expired(NOW + 3 * NS) {
                out.push(render(&e, b"/1", false));
            }
        }
    }
    out.push(js(&s.get(b"/", true, NOW + 4 * NS).unwrap()));
    out.push(format!("{} {:?}", s.index(), s.next_expiry_ns()));
    out
}

#[test]
fn same_writes_give_same_events_and_tree() {
    let script = script();
    let a = run(&script);
    let b = run(&script);
    assert_eq!(a, b);
    assert!(a.iter().any(|l| l.contains("\"expire\"")));
    assert!(a.iter().any(|l| l.contains("\"errorCode\":105")));
}

#[test]
fn writes_survive_a_serde_round_trip() {
    let script = script();
    let json = serde_json::to_string(&script).unwrap();
    let back: Vec<Write> = serde_json::from_str(&json).unwrap();
    assert_eq!(run(&script), run(&back));
}

#[test]
fn error_cause_has_one_replacement_per_invalid_byte() {
    // etcd: {"errorCode":104,...,"cause":"/\ufffd\ufffd\ufffd",...}; the
    // cause is a String here, so the replacement is written unescaped.
    let mut s = store();
    s.set(b"/1/\xff\xe2\x82", false, b"1", perm(), NOW).unwrap();
    let err = s
        .set(b"/1/\xff\xe2\x82/x", false, b"1", perm(), NOW)
        .unwrap_err();
    assert_eq!(err.cause, "/1/\u{fffd}\u{fffd}\u{fffd}");
}

/// The escaping rules, char by char, as Go states them: the oracle for the
/// byte-scanning encoder.
fn go_escape_reference(s: &str) -> Vec<u8> {
    let mut out = vec![b'"'];
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{2028}' => out.extend_from_slice(b"\\u2028"),
            '\u{2029}' => out.extend_from_slice(b"\\u2029"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out.push(b'"');
    out
}

#[test]
fn string_escaping_matches_the_char_by_char_rules() {
    let alphabet = [
        "a", "Z", "é", "\"", "\\", "\n", "\r", "\t", "\u{1}", "\u{1f}", " ", "<", ">", "&",
        "\u{7f}", "\u{2028}", "\u{2029}", "\u{2027}", "\u{202a}", "€", "ⅸ", "\u{e2}", "🦀", "/",
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = (x >> 58) as usize;
        let mut s = String::new();
        let mut y = x;
        for _ in 0..len {
            y = y
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s.push_str(alphabet[(y >> 33) as usize % alphabet.len()]);
        }
        let mut out = Vec::new();
        crate::json::write_str(&mut out, s.as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&go_escape_reference(&s)),
            "{s:?}"
        );
    }
}
