//! Operations on keys and directories, their events, listings and errors.

use super::*;
use crate::{Action, Code};

// ----- set / get ------------------------------------------------------

#[test]
fn set_new_key_event() {
    let mut s = store();
    let e = set(&mut s, "/foo", "bar");
    assert_eq!(e.action, Action::Set);
    assert!(e.is_created());
    assert_eq!(e.etcd_index, 1);
    assert_eq!(
        js(&e),
        r#"{"action":"set","node":{"key":"/foo","value":"bar","modifiedIndex":1,"createdIndex":1}}"#
    );
}

#[test]
fn set_existing_key_replaces_with_prev_node() {
    let mut s = store();
    set(&mut s, "/foo", "a");
    let e = set(&mut s, "/foo", "b");
    assert!(!e.is_created());
    assert_eq!(
        js(&e),
        r#"{"action":"set","node":{"key":"/foo","value":"b","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/foo","value":"a","modifiedIndex":1,"createdIndex":1}}"#
    );
}

#[test]
fn set_empty_value_is_rendered() {
    let mut s = store();
    let e = set(&mut s, "/foo", "");
    assert_eq!(
        js(&e),
        r#"{"action":"set","node":{"key":"/foo","value":"","modifiedIndex":1,"createdIndex":1}}"#
    );
}

#[test]
fn set_dir_event_has_dir_flag_and_no_value() {
    let mut s = store();
    let e = mkdir(&mut s, "/d");
    assert_eq!(
        js(&e),
        r#"{"action":"set","node":{"key":"/d","dir":true,"modifiedIndex":1,"createdIndex":1}}"#
    );
}

#[test]
fn set_dir_over_key_replaces_it() {
    let mut s = store();
    set(&mut s, "/foo", "a");
    let e = mkdir(&mut s, "/foo");
    assert!(e.node.dir);
    assert_eq!(
        e.prev_node.as_ref().unwrap().value.as_deref(),
        Some(&b"a"[..])
    );
    assert!(s.get(&k("/foo"), false, NOW).unwrap().node.dir);
}

#[test]
fn set_over_dir_is_not_a_file() {
    let mut s = store();
    mkdir(&mut s, "/d");
    let err = s.set(&k("/d"), false, b"x", perm(), NOW).unwrap_err();
    assert_eq!(
        ejs(&err),
        r#"{"errorCode":102,"message":"Not a file","cause":"/1/d","index":1}"#
    );
    let err = s.set(&k("/d"), true, b"", perm(), NOW).unwrap_err();
    assert_eq!(err.code, Code::NotFile);
}

#[test]
fn set_cleans_the_path() {
    let mut s = store();
    let e = s.set(b"/1//a/./b/../c/", false, b"v", perm(), NOW).unwrap();
    assert_eq!(&*e.node.key, b"/1/a/c");
    assert!(s.get(&k("/a/c"), false, NOW).is_ok());
}

#[test]
fn get_key() {
    let mut s = store();
    set(&mut s, "/foo", "bar");
    set(&mut s, "/other", "x");
    let e = s.get(&k("/foo"), false, NOW).unwrap();
    assert_eq!(e.etcd_index, 2);
    assert_eq!(
        js(&e),
        r#"{"action":"get","node":{"key":"/foo","value":"bar","modifiedIndex":1,"createdIndex":1}}"#
    );
}

#[test]
fn get_missing_key_names_first_missing_path() {
    let mut s = store();
    set(&mut s, "/a/x", "1");
    let err = s.get(&k("/a/b/c"), false, NOW).unwrap_err();
    assert_eq!(
        ejs(&err),
        r#"{"errorCode":100,"message":"Key not found","cause":"/1/a/b","index":1}"#
    );
}

#[test]
fn get_below_a_key_is_not_a_dir() {
    let mut s = store();
    set(&mut s, "/f", "1");
    let err = s.get(&k("/f/g/h"), false, NOW).unwrap_err();
    assert_eq!(
        ejs(&err),
        r#"{"errorCode":104,"message":"Not a directory","cause":"/1/f","index":1}"#
    );
}

#[test]
fn get_namespace_root_has_no_key() {
    let mut s = store();
    set(&mut s, "/a", "1");
    let e = s.get(&k(""), false, NOW).unwrap();
    assert_eq!(
        js(&e),
        r#"{"action":"get","node":{"dir":true,"nodes":[{"key":"/a","value":"1","modifiedIndex":1,"createdIndex":1}]}}"#
    );
}

#[test]
fn get_empty_dir_omits_nodes() {
    let mut s = store();
    mkdir(&mut s, "/d");
    let e = s.get(&k("/d"), true, NOW).unwrap();
    assert_eq!(
        js(&e),
        r#"{"action":"get","node":{"key":"/d","dir":true,"modifiedIndex":1,"createdIndex":1}}"#
    );
}

#[test]
fn get_the_store_root_lists_namespaces() {
    let s = store();
    let e = s.get(b"/", false, NOW).unwrap();
    let keys: Vec<_> = e.node.nodes.iter().map(|n| n.key.to_vec()).collect();
    assert_eq!(keys, vec![b"/0".to_vec(), b"/1".to_vec()]);
}

// ----- listings -------------------------------------------------------

fn tree_fixture() -> Store {
    let mut s = store();
    set(&mut s, "/d/b", "2"); // 1 (creates /d at 1)
    set(&mut s, "/d/a", "1"); // 2
    set(&mut s, "/d/sub/x", "3"); // 3 (creates /d/sub at 3)
    set(&mut s, "/d/_hidden", "h"); // 4
    set(&mut s, "/d/sub/_h", "h"); // 5
    s
}

#[test]
fn listing_non_recursive_shows_children_without_grandchildren() {
    let s = tree_fixture();
    let e = s.get(&k("/d"), false, NOW).unwrap();
    assert_eq!(
        js(&e),
        concat!(
            r#"{"action":"get","node":{"key":"/d","dir":true,"nodes":["#,
            r#"{"key":"/d/a","value":"1","modifiedIndex":2,"createdIndex":2},"#,
            r#"{"key":"/d/b","value":"2","modifiedIndex":1,"createdIndex":1},"#,
            r#"{"key":"/d/sub","dir":true,"modifiedIndex":3,"createdIndex":3}"#,
            r#"],"modifiedIndex":1,"createdIndex":1}}"#
        )
    );
}

#[test]
fn listing_recursive_shows_whole_visible_subtree() {
    let s = tree_fixture();
    let e = s.get(&k("/d"), true, NOW).unwrap();
    assert_eq!(
        js(&e),
        concat!(
            r#"{"action":"get","node":{"key":"/d","dir":true,"nodes":["#,
            r#"{"key":"/d/a","value":"1","modifiedIndex":2,"createdIndex":2},"#,
            r#"{"key":"/d/b","value":"2","modifiedIndex":1,"createdIndex":1},"#,
            r#"{"key":"/d/sub","dir":true,"nodes":["#,
            r#"{"key":"/d/sub/x","value":"3","modifiedIndex":3,"createdIndex":3}"#,
            r#"],"modifiedIndex":3,"createdIndex":3}"#,
            r#"],"modifiedIndex":1,"createdIndex":1}}"#
        )
    );
}

#[test]
fn listing_is_sorted_by_key_bytes() {
    let mut s = store();
    for name in ["b", "B", "a", "10", "9", "a0", "_x"] {
        set(&mut s, &format!("/d/{name}"), "v");
    }
    let e = s.get(&k("/d"), false, NOW).unwrap();
    let keys: Vec<String> = e
        .node
        .nodes
        .iter()
        .map(|n| String::from_utf8_lossy(&n.key).into())
        .collect();
    assert_eq!(
        keys,
        ["/1/d/10", "/1/d/9", "/1/d/B", "/1/d/a", "/1/d/a0", "/1/d/b"]
    );
}

#[test]
fn hidden_key_is_gettable() {
    let s = tree_fixture();
    let e = s.get(&k("/d/_hidden"), false, NOW).unwrap();
    assert_eq!(e.node.value.as_deref(), Some(&b"h"[..]));
}

#[test]
fn hidden_dir_lists_its_visible_children() {
    let mut s = store();
    set(&mut s, "/_d/x", "1");
    assert!(s.get(&k(""), true, NOW).unwrap().node.nodes.is_empty());
    let e = s.get(&k("/_d"), false, NOW).unwrap();
    assert_eq!(e.node.nodes.len(), 1);
}

// ----- intermediate directories -----------------------------------------

#[test]
fn intermediate_dirs_are_created_at_the_write_index() {
    let mut s = store();
    set(&mut s, "/x", "1");
    set(&mut s, "/a/b/c", "v");
    for p in ["/a", "/a/b", "/a/b/c"] {
        let n = s.get(&k(p), false, NOW).unwrap().node;
        assert_eq!((n.created_index, n.modified_index), (2, 2), "{p}");
    }
    assert!(s.get(&k("/a/b"), false, NOW).unwrap().node.dir);
}

#[test]
fn existing_dirs_keep_their_indexes() {
    let mut s = store();
    set(&mut s, "/a/x", "1");
    set(&mut s, "/a/y", "2");
    let n = s.get(&k("/a"), false, NOW).unwrap().node;
    assert_eq!((n.created_index, n.modified_index), (1, 1));
}

#[test]
fn write_below_a_key_is_not_a_dir() {
    let mut s = store();
    set(&mut s, "/f", "1");
    let err = s.set(&k("/f/g"), false, b"x", perm(), NOW).unwrap_err();
    assert_eq!(
        ejs(&err),
        r#"{"errorCode":104,"message":"Not a directory","cause":"/1/f","index":1}"#
    );
    let err = s
        .create(&k("/f/g/h"), false, b"x", false, perm(), NOW)
        .unwrap_err();
    assert_eq!(
        ejs(&err),
        r#"{"errorCode":104,"message":"Not a directory","cause":"/1/f","index":1}"#
    );
}

// ----- create ---------------------------------------------------------

#[test]
fn create_new_key() {
    let mut s = store();
    let e = s.create(&k("/c"), false, b"v", false, perm(), NOW).unwrap();
    assert!(e.is_created());
    assert_eq!(
        js(&e),
        r#"{"action":"create","node":{"key":"/c","value":"v","modifiedIndex":1,"createdIndex":1}}"#
    );
}

#[test]
fn create_dir() {
    let mut s = store();
    let e = s.create(&k("/d"), true, b"", false, perm(), NOW).unwrap();
    assert_eq!(
        js(&e),
        r#"{"action":"create","node":{"key":"/d","dir":true,"modifiedIndex":1,"createdIndex":1}}"#
    );
}

#[test]
fn create_existing_key_fails_with_105() {
    let mut s = store();
    set(&mut s, "/c", "v");
    let err = s
        .create(&k("/c"), false, b"w", false, perm(), NOW)
        .unwrap_err();
    assert_eq!(
        ejs(&err),
        r#"{"errorCode":105,"message":"Key already exists","cause":"/1/c","index":1}"#
    );
    mkdir(&mut s, "/d");
    let err = s
        .create(&k("/d"), true, b"", false, perm(), NOW)
        .unwrap_err();
    assert_eq!(
        (err.code, err.cause.as_str(), err.index),
        (Code::NodeExist, "/1/d", 2)
    );
}

#[test]
fn create_unique_appends_20_digit_index() {
    let mut s = store();
    set(&mut s, "/x", "1");
    let e = s
        .create(&k("/q"), false, b"job", true, perm(), NOW)
        .unwrap();
    assert_eq!(&*e.node.key, b"/1/q/00000000000000000002");
    assert_eq!(e.action, Action::Create);
    let e = s
        .create(&k("/q"), false, b"job2", true, perm(), NOW)
        .unwrap();
    assert_eq!(&*e.node.key, b"/1/q/00000000000000000003");
}

#[test]
fn create_unique_keys_list_in_order() {
    let mut s = store();
    for i in 0..12 {
        s.create(
            &k("/q"),
            false,
            format!("{i}").as_bytes(),
            true,
            perm(),
            NOW,
        )
        .unwrap();
    }
    let e = s.get(&k("/q"), false, NOW).unwrap();
    let values: Vec<String> = e
        .node
        .nodes
        .iter()
        .map(|n| String::from_utf8_lossy(n.value.as_deref().unwrap()).into())
        .collect();
    let want: Vec<String> = (0..12).map(|i| i.to_string()).collect();
    assert_eq!(values, want);
}

#[test]
fn create_unique_below_a_key_is_not_a_dir() {
    let mut s = store();
    set(&mut s, "/f", "1");
    let err = s
        .create(&k("/f"), false, b"x", true, perm(), NOW)
        .unwrap_err();
    assert_eq!(
        (err.code, err.cause.as_str(), err.index),
        (Code::NotDir, "/1/f", 1)
    );
}

// ----- update ---------------------------------------------------------

#[test]
fn update_key_changes_value_keeps_created_index() {
    let mut s = store();
    set(&mut s, "/u", "a");
    set(&mut s, "/other", "x");
    let e = s.update(&k("/u"), b"b", perm(), NOW).unwrap();
    assert!(!e.is_created());
    assert_eq!(
        js(&e),
        r#"{"action":"update","node":{"key":"/u","value":"b","modifiedIndex":3,"createdIndex":1},"prevNode":{"key":"/u","value":"a","modifiedIndex":1,"createdIndex":1}}"#
    );
    let n = s.get(&k("/u"), false, NOW).unwrap().node;
    assert_eq!((n.modified_index, n.created_index), (3, 1));
}

#[test]
fn update_missing_key_is_100() {
    let mut s = store();
    let err = s.update(&k("/nope"), b"b", perm(), NOW).unwrap_err();
    assert_eq!(
        ejs(&err),
        r#"{"errorCode":100,"message":"Key not found","cause":"/1/nope","index":0}"#
    );
}

#[test]
fn update_dir_with_value_is_not_a_file() {
    let mut s = store();
    mkdir(&mut s, "/d");
    let err = s.update(&k("/d"), b"v", perm(), NOW).unwrap_err();
    assert_eq!(
        (err.code, err.cause.as_str(), err.index),
        (Code::NotFile, "/1/d", 1)
    );
}

#[test]
fn update_dir_without_value_keeps_its_modified_index() {
    let mut s = store();
    mkdir(&mut s, "/d");
    let e = s.update(&k("/d"), b"", ttl(10), NOW).unwrap();
    assert!(e.node.dir);
    assert_eq!(e.node.value, None);
    assert_eq!((e.node.modified_index, e.node.created_index), (2, 1));
    let n = s.get(&k("/d"), false, NOW).unwrap().node;
    assert_eq!((n.modified_index, n.created_index, n.ttl_s), (1, 1, 10));
    assert_eq!(s.index(), 2);
}

// ----- compare and swap -----------------------------------------------

#[test]
fn cas_by_value() {
    let mut s = store();
    set(&mut s, "/c", "a");
    let e = s
        .compare_and_swap(&k("/c"), b"a", 0, b"b", perm(), NOW)
        .unwrap();
    assert_eq!(
        js(&e),
        r#"{"action":"compareAndSwap","node":{"key":"/c","value":"b","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/c","value":"a","modifiedIndex":1,"createdIndex":1}}"#
    );
}

#[test]
fn cas_by_index() {
    let mut s = store();
    set(&mut s, "/c", "a");
    let e = s
        .compare_and_swap(&k("/c"), b"", 1, b"b", perm(), NOW)
        .unwrap();
    assert_eq!(e.node.modified_index, 2);
    assert_eq!(s.get(&k("/c"), false, NOW).unwrap().node.modified_index, 2);
}

#[test]
fn cas_value_mismatch_cause() {
    let mut s = store();
    set(&mut s, "/c", "a");
    let err = s
        .compare_and_swap(&k("/c"), b"x", 0, b"b", perm(), NOW)
        .unwrap_err();
    assert_eq!(
        ejs(&err),
        r#"{"errorCode":101,"message":"Compare failed","cause":"[x != a]","index":1}"#
    );
}

#[test]
fn cas_index_mismatch_cause() {
    let mut s = store();
    set(&mut s, "/c", "a");
    let err = s
        .compare_and_swap(&k("/c"), b"", 7, b"b", perm(), NOW)
        .unwrap_err();
    assert_eq!(
        (err.code, err.cause.as_str(), err.index),
        (Code::TestFailed, "[7 != 1]", 1)
    );
}

#[test]
fn cas_both_mismatch_cause() {
    let mut s = store();
    set(&mut s, "/c", "a");
    let err = s
        .compare_and_swap(&k("/c"), b"x", 7, b"b", perm(), NOW)
        .unwrap_err();
    assert_eq!(err.cause, "[x != a] [7 != 1]");
}

#[test]
fn cas_one_of_two_mismatching_fails() {
    let mut s = store();
    set(&mut s, "/c", "a");
    let err = s
        .compare_and_swap(&k("/c"), b"a", 7, b"b", perm(), NOW)
        .unwrap_err();
    assert_eq!(err.cause, "[7 != 1]");
    let err = s
        .compare_and_swap(&k("/c"), b"x", 1, b"b", perm(), NOW)
        .unwrap_err();
    assert_eq!(err.cause, "[x != a]");
}

#[test]
fn cas_on_dir_is_not_a_file() {
    let mut s = store();
    mkdir(&mut s, "/d");
    let err = s
        .compare_and_swap(&k("/d"), b"a", 0, b"b", perm(), NOW)
        .unwrap_err();
    assert_eq!((err.code, err.cause.as_str()), (Code::NotFile, "/1/d"));
}

#[test]
fn cas_missing_key_is_100() {
    let mut s = store();
    let err = s
        .compare_and_swap(&k("/c"), b"a", 0, b"b", perm(), NOW)
        .unwrap_err();
    assert_eq!((err.code, err.cause.as_str()), (Code::KeyNotFound, "/1/c"));
}

// ----- delete ---------------------------------------------------------

#[test]
fn delete_key_event() {
    let mut s = store();
    set(&mut s, "/k", "v");
    let e = s.delete(&k("/k"), false, false, NOW).unwrap();
    assert_eq!(e.etcd_index, 2);
    assert_eq!(
        js(&e),
        r#"{"action":"delete","node":{"key":"/k","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}"#
    );
    assert_eq!(
        s.get(&k("/k"), false, NOW).unwrap_err().code,
        Code::KeyNotFound
    );
}

#[test]
fn delete_key_with_dir_flag_works() {
    let mut s = store();
    set(&mut s, "/k", "v");
    assert!(s.delete(&k("/k"), true, false, NOW).is_ok());
}

#[test]
fn delete_dir_without_dir_flag_is_not_a_file() {
    let mut s = store();
    mkdir(&mut s, "/d");
    let err = s.delete(&k("/d"), false, false, NOW).unwrap_err();
    assert_eq!(
        ejs(&err),
        r#"{"errorCode":102,"message":"Not a file","cause":"/1/d","index":1}"#
    );
}

#[test]
fn delete_empty_dir() {
    let mut s = store();
    mkdir(&mut s, "/d");
    let e = s.delete(&k("/d"), true, false, NOW).unwrap();
    assert_eq!(
        js(&e),
        r#"{"action":"delete","node":{"key":"/d","dir":true,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/d","dir":true,"modifiedIndex":1,"createdIndex":1}}"#
    );
}

#[test]
fn delete_non_empty_dir_needs_recursive() {
    let mut s = store();
    set(&mut s, "/d/x", "1");
    let err = s.delete(&k("/d"), true, false, NOW).unwrap_err();
    assert_eq!(
        ejs(&err),
        r#"{"errorCode":108,"message":"Directory not empty","cause":"/1/d","index":1}"#
    );
    // A hidden child counts too.
    mkdir(&mut s, "/e");
    set(&mut s, "/e/_h", "1");
    assert_eq!(
        s.delete(&k("/e"), true, false, NOW).unwrap_err().code,
        Code::DirNotEmpty
    );
}

#[test]
fn delete_recursive_removes_subtree() {
    let mut s = store();
    set(&mut s, "/d/x/y", "1");
    set(&mut s, "/d/z", "2");
    let e = s.delete(&k("/d"), false, true, NOW).unwrap();
    assert!(e.node.dir);
    assert_eq!(
        e.prev_node.as_ref().unwrap().nodes.len(),
        0,
        "prevNode is not recursive"
    );
    assert_eq!(
        s.get(&k("/d"), false, NOW).unwrap_err().code,
        Code::KeyNotFound
    );
    assert_eq!(s.get(&k("/d/x/y"), false, NOW).unwrap_err().cause, "/1/d");
}

#[test]
fn delete_missing_key_is_100() {
    let mut s = store();
    let err = s.delete(&k("/nope"), false, false, NOW).unwrap_err();
    assert_eq!(
        (err.code, err.cause.as_str(), err.index),
        (Code::KeyNotFound, "/1/nope", 0)
    );
}

// ----- compare and delete ----------------------------------------------

#[test]
fn cad_by_value() {
    let mut s = store();
    set(&mut s, "/k", "v");
    let e = s.compare_and_delete(&k("/k"), b"v", 0, NOW).unwrap();
    assert_eq!(
        js(&e),
        r#"{"action":"compareAndDelete","node":{"key":"/k","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}"#
    );
    assert!(s.get(&k("/k"), false, NOW).is_err());
}

#[test]
fn cad_by_index() {
    let mut s = store();
    set(&mut s, "/k", "v");
    assert!(s.compare_and_delete(&k("/k"), b"", 1, NOW).is_ok());
}

#[test]
fn cad_mismatch_causes() {
    let mut s = store();
    set(&mut s, "/k", "v");
    let err = s.compare_and_delete(&k("/k"), b"w", 0, NOW).unwrap_err();
    assert_eq!(
        ejs(&err),
        r#"{"errorCode":101,"message":"Compare failed","cause":"[w != v]","index":1}"#
    );
    assert_eq!(
        s.compare_and_delete(&k("/k"), b"", 3, NOW)
            .unwrap_err()
            .cause,
        "[3 != 1]"
    );
    assert_eq!(
        s.compare_and_delete(&k("/k"), b"w", 3, NOW)
            .unwrap_err()
            .cause,
        "[w != v] [3 != 1]"
    );
    assert!(s.get(&k("/k"), false, NOW).is_ok());
}

#[test]
fn cad_on_dir_is_not_a_file() {
    let mut s = store();
    mkdir(&mut s, "/d");
    let err = s.compare_and_delete(&k("/d"), b"", 1, NOW).unwrap_err();
    assert_eq!((err.code, err.cause.as_str()), (Code::NotFile, "/1/d"));
}

#[test]
fn cad_on_namespace_is_not_a_file_not_read_only() {
    // etcd's CompareAndDelete has no read-only check: the namespace is a
    // directory, so it fails with 102.
    let mut s = store();
    let err = s.compare_and_delete(b"/1", b"x", 0, NOW).unwrap_err();
    assert_eq!((err.code, err.cause.as_str()), (Code::NotFile, "/1"));
}

// ----- read-only paths --------------------------------------------------

#[test]
fn root_and_namespaces_are_read_only() {
    let mut s = store();
    set(&mut s, "/x", "1");
    let want = r#"{"errorCode":107,"message":"Root is read only","cause":"/","index":1}"#;
    for p in [&b"/"[..], b"/1", b"/0", b"/1/"] {
        assert_eq!(ejs(&s.set(p, false, b"v", perm(), NOW).unwrap_err()), want);
        assert_eq!(ejs(&s.set(p, true, b"", perm(), NOW).unwrap_err()), want);
        assert_eq!(
            ejs(&s.create(p, true, b"", false, perm(), NOW).unwrap_err()),
            want
        );
        assert_eq!(ejs(&s.update(p, b"", perm(), NOW).unwrap_err()), want);
        assert_eq!(
            ejs(&s
                .compare_and_swap(p, b"a", 0, b"v", perm(), NOW)
                .unwrap_err()),
            want
        );
        assert_eq!(ejs(&s.delete(p, true, true, NOW).unwrap_err()), want);
    }
    assert_eq!(s.index(), 1);
}

#[test]
fn stats_count_successes_and_failures() {
    let mut s = store();
    set(&mut s, "/a", "1");
    let _ = s.get(&k("/a"), false, NOW);
    let _ = s.get(&k("/b"), false, NOW);
    let _ = s.create(&k("/a"), false, b"", false, perm(), NOW);
    let json = String::from_utf8(s.stats_json()).unwrap();
    assert_eq!(
        json,
        concat!(
            r#"{"getsSuccess":1,"getsFail":1,"setsSuccess":1,"setsFail":0,"deleteSuccess":0,"deleteFail":0,"#,
            r#""updateSuccess":0,"updateFail":0,"createSuccess":0,"createFail":1,"compareAndSwapSuccess":0,"#,
            r#""compareAndSwapFail":0,"compareAndDeleteSuccess":0,"compareAndDeleteFail":0,"expireCount":0,"watchers":0}"#
        )
    );
}

#[test]
fn stats_count_a_create_below_a_key_as_failed_set_too() {
    // etcd's internalCreate bumps setsFail when its walk fails.
    let mut s = store();
    set(&mut s, "/f", "1");
    let _ = s.set(&k("/f/x"), false, b"1", perm(), NOW);
    let _ = s.create(&k("/f/x"), false, b"1", false, perm(), NOW);
    let json = String::from_utf8(s.stats_json()).unwrap();
    assert!(json.contains(r#""setsSuccess":1,"setsFail":2,"#), "{json}");
    assert!(
        json.contains(r#""createSuccess":0,"createFail":1,"#),
        "{json}"
    );
}
