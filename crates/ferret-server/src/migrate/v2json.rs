//! etcd's v2 store as its snapshot files hold it (`store.Save`: Go's JSON
//! of the store) turned into ferretcd's v2 snapshot format
//! (`ferret_v2store::snapshot`'s version 1, specified there), which
//! `Store::from_snapshot` then checks whole.
//!
//! etcd's JSON: `{"Root": node, "WatcherHub": {"EventHistory": {"Queue":
//! {"Events": [event|null ...], "Size", "Front", "Back", "Capacity"},
//! "StartIndex", "LastIndex"}}, "CurrentIndex", "Stats": {...},
//! "CurrentVersion"}`, a node `{"Path", "CreatedIndex", "ModifiedIndex",
//! "ExpireTime" (RFC 3339; Go's zero time for none), "Value", "Children"
//! (an object of nodes by name, `null` for a file)}`, an event
//! `{"action", "node", "prevNode", "refresh"}` with nodes as the v2 API
//! shows them. etcd does not save an event's index (`EtcdIndex` is
//! `json:"-"`): a converted event's index is its node's modified index,
//! the index etcd's history scan uses.

use serde_json::Value;

/// The stats counters, in the order of ferretcd's format.
const STATS: [&str; 15] = [
    "getsSuccess",
    "getsFail",
    "setsSuccess",
    "setsFail",
    "deleteSuccess",
    "deleteFail",
    "updateSuccess",
    "updateFail",
    "createSuccess",
    "createFail",
    "compareAndSwapSuccess",
    "compareAndSwapFail",
    "compareAndDeleteSuccess",
    "compareAndDeleteFail",
    "expireCount",
];

/// Expiry times before this (2000-01-01, Unix ns) mean none, as in
/// ferretcd's format.
const MIN_EXPIRE_NS: i64 = 946_684_800_000_000_000;

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn u64_of(v: &Value, what: &str) -> Result<u64, String> {
    match v {
        Value::Null => Ok(0),
        v => v
            .as_u64()
            .ok_or_else(|| format!("{what} is not a count: {v}")),
    }
}

fn str_of<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    match v {
        Value::Null => Ok(""),
        v => v
            .as_str()
            .ok_or_else(|| format!("{what} is not a string: {v}")),
    }
}

/// Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An RFC 3339 time as Go's `encoding/json` writes a `time.Time`, in Unix
/// ns; `None` for times before 2000 (Go's zero time among them).
pub fn parse_time(s: &str) -> Result<Option<i64>, String> {
    let bad = || format!("not an RFC 3339 time: {s:?}");
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let t = s.get(r).ok_or_else(bad)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse::<i64>().map_err(|_| bad())
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut frac_ns = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[start..i];
        if digits.is_empty() || digits.len() > 9 {
            return Err(bad());
        }
        frac_ns = digits.parse::<i64>().map_err(|_| bad())? * 10i64.pow(9 - digits.len() as u32);
    }
    let offset_s = match &s[i..] {
        "Z" => 0,
        z if z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) && &z[3..4] == ":" => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if z.starts_with('-') {
                -o
            } else {
                o
            }
        }
        _ => return Err(bad()),
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset_s;
    let ns = secs
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_ns));
    Ok(ns.filter(|n| *n >= MIN_EXPIRE_NS))
}

/// The tree, depth first: a node and its children.
fn node(out: &mut Vec<u8>, n: &Value, path: &str, depth: usize) -> Result<(), String> {
    if depth > 100 {
        return Err(format!("{path}: nested deeper than 100 directories"));
    }
    let created = u64_of(&n["CreatedIndex"], "CreatedIndex")?;
    let modified = u64_of(&n["ModifiedIndex"], "ModifiedIndex")?;
    let expiry = match &n["ExpireTime"] {
        Value::Null => None,
        v => parse_time(str_of(v, "ExpireTime")?).map_err(|e| format!("{path}: {e}"))?,
    };
    let children = match &n["Children"] {
        Value::Null => None,
        Value::Object(m) => Some(m),
        v => return Err(format!("{path}: Children is not an object: {v}")),
    };
    let mut flags = 0u8;
    if children.is_some() {
        flags |= 1;
    }
    if expiry.is_some() {
        flags |= 2;
    }
    out.push(flags);
    varint(out, created);
    varint(out, modified);
    if let Some(e) = expiry {
        out.extend_from_slice(&e.to_le_bytes());
    }
    match children {
        None => bytes(out, str_of(&n["Value"], "Value")?.as_bytes()),
        Some(m) => {
            let mut names: Vec<(&String, &Value)> = m.iter().collect();
            names.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            varint(out, names.len() as u64);
            for (name, child) in names {
                bytes(out, name.as_bytes());
                let child_path = if path == "/" {
                    format!("/{name}")
                } else {
                    format!("{path}/{name}")
                };
                node(out, child, &child_path, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// A node of an event, as the v2 API shows it.
fn view(out: &mut Vec<u8>, v: &Value) -> Result<(), String> {
    if v.get("nodes").is_some_and(|n| !n.is_null()) {
        return Err("a history event whose node lists children".into());
    }
    let key = str_of(&v["key"], "key")?;
    let dir = v["dir"].as_bool().unwrap_or(false);
    let value = match &v["value"] {
        Value::Null => None,
        x => Some(str_of(x, "value")?),
    };
    let expiration = match &v["expiration"] {
        Value::Null => None,
        x => parse_time(str_of(x, "expiration")?)?,
    };
    let mut flags = 0u8;
    if dir {
        flags |= 1;
    }
    if value.is_some() {
        flags |= 2;
    }
    if expiration.is_some() {
        flags |= 4;
    }
    out.push(flags);
    bytes(out, key.as_bytes());
    if let Some(value) = value {
        bytes(out, value.as_bytes());
    }
    if let Some(e) = expiration {
        out.extend_from_slice(&e.to_le_bytes());
    }
    let ttl = v["ttl"].as_i64().unwrap_or(0);
    varint(out, ((ttl << 1) ^ (ttl >> 63)) as u64);
    varint(out, u64_of(&v["modifiedIndex"], "modifiedIndex")?);
    varint(out, u64_of(&v["createdIndex"], "createdIndex")?);
    varint(out, 0);
    Ok(())
}

fn action_code(a: &str) -> Result<u8, String> {
    Ok(match a {
        "create" => 1,
        "set" => 2,
        "update" => 3,
        "delete" => 4,
        "compareAndSwap" => 5,
        "compareAndDelete" => 6,
        "expire" => 7,
        other => return Err(format!("a history event with action {other:?}")),
    })
}

/// ferretcd's v2 snapshot bytes of etcd's v2 store JSON.
pub fn convert(json: &[u8]) -> Result<Vec<u8>, String> {
    let s: Value = serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
    let root = &s["Root"];
    if !root.is_object() {
        return Err("no Root node".into());
    }
    let mut out = b"FRTSNAP\x01".to_vec();
    varint(&mut out, u64_of(&s["CurrentIndex"], "CurrentIndex")?);
    // etcd's read-only set: the root and its two namespaces.
    let namespaces: [&[u8]; 3] = [b"/", b"/0", b"/1"];
    varint(&mut out, namespaces.len() as u64);
    for ns in namespaces {
        bytes(&mut out, ns);
    }
    for name in STATS {
        varint(&mut out, u64_of(&s["Stats"][name], name)?);
    }
    let queue = &s["WatcherHub"]["EventHistory"]["Queue"];
    let events = match &queue["Events"] {
        Value::Null => Vec::new(),
        Value::Array(a) => {
            let size = u64_of(&queue["Size"], "Size")? as usize;
            let front = u64_of(&queue["Front"], "Front")? as usize;
            let cap = a.len();
            if size > cap || (cap > 0 && front >= cap) {
                return Err(format!(
                    "event history of {size} events from {front} in a queue of {cap}"
                ));
            }
            (0..size).map(|i| &a[(front + i) % cap]).collect()
        }
        v => return Err(format!("history Events is not a list: {v}")),
    };
    varint(&mut out, events.len() as u64);
    for e in events {
        let action = action_code(str_of(&e["action"], "action")?)?;
        let node = &e["node"];
        if !node.is_object() {
            return Err("a history event without a node".into());
        }
        let prev = &e["prevNode"];
        let mut flags = 0u8;
        if e["refresh"].as_bool().unwrap_or(false) {
            flags |= 1;
        }
        if prev.is_object() {
            flags |= 2;
        }
        out.push(action);
        out.push(flags);
        varint(&mut out, u64_of(&node["modifiedIndex"], "modifiedIndex")?);
        view(&mut out, node)?;
        if prev.is_object() {
            view(&mut out, prev)?;
        }
    }
    node(&mut out, root, "/", 0)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("0001-01-01T00:00:00Z").unwrap(), None);
        assert_eq!(
            parse_time("2024-01-02T03:04:05.5Z").unwrap(),
            Some(1_704_164_645_500_000_000)
        );
        assert_eq!(
            parse_time("2024-01-02T04:04:05.5+01:00").unwrap(),
            Some(1_704_164_645_500_000_000)
        );
        assert!(parse_time("2024-01-02").is_err());
        assert!(parse_time("2024-01-02T03:04:05.Z").is_err());
        assert!(parse_time("2024-13-02T03:04:05Z").is_err());
    }

    /// A store as etcd 3.4 saves it (shape of `store.Save`, trimmed).
    #[test]
    fn converts_etcd_json() {
        let json = br#"{"Root":{"Path":"/","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"0":{"Path":"/0","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"members":{"Path":"/0/members","CreatedIndex":1,"ModifiedIndex":1,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"8e9e05c52164694d":{"Path":"/0/members/8e9e05c52164694d","CreatedIndex":1,"ModifiedIndex":1,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"raftAttributes":{"Path":"/0/members/8e9e05c52164694d/raftAttributes","CreatedIndex":1,"ModifiedIndex":1,"ExpireTime":"0001-01-01T00:00:00Z","Value":"{\"peerURLs\":[\"http://localhost:2380\"]}","Children":null}}}}},"version":{"Path":"/0/version","CreatedIndex":5,"ModifiedIndex":5,"ExpireTime":"0001-01-01T00:00:00Z","Value":"3.4.0","Children":null}}},"1":{"Path":"/1","CreatedIndex":0,"ModifiedIndex":0,"ExpireTime":"0001-01-01T00:00:00Z","Value":"","Children":{"t":{"Path":"/1/t","CreatedIndex":6,"ModifiedIndex":6,"ExpireTime":"2099-01-01T00:00:00Z","Value":"v","Children":null}}}}},"WatcherHub":{"EventHistory":{"Queue":{"Events":[{"action":"create","node":{"key":"/1/t","value":"v","expiration":"2099-01-01T00:00:00Z","ttl":100,"modifiedIndex":6,"createdIndex":6}},null,{"action":"set","node":{"key":"/0/version","value":"3.4.0","modifiedIndex":5,"createdIndex":5}}],"Size":2,"Front":2,"Back":1,"Capacity":3},"StartIndex":5,"LastIndex":6}},"CurrentIndex":6,"Stats":{"getsSuccess":1,"setsSuccess":2,"expireCount":0,"watchers":0},"CurrentVersion":2}"#;
        let bytes = convert(json).unwrap();
        let store = ferret_v2store::Store::from_snapshot(&bytes).unwrap();
        assert_eq!(store.index(), 6);
        let ev = store.get(b"/1/t", false, 0).unwrap();
        assert_eq!(ev.node.value.as_deref(), Some(&b"v"[..]));
        let ev = store
            .get(b"/0/members/8e9e05c52164694d/raftAttributes", false, 0)
            .unwrap();
        assert!(ev.node.value.is_some());
        assert_eq!(store.history().count(), 2);
        assert!(store.has_ttl_keys());
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            &b""[..],
            b"{}",
            b"[1]",
            b"{\"Root\":{\"Children\":3}}",
            b"{\"Root\":{},\"CurrentIndex\":-1}",
        ] {
            assert!(
                convert(bad).is_err()
                    || ferret_v2store::Store::from_snapshot(&convert(bad).unwrap()).is_err()
            );
        }
    }
}
