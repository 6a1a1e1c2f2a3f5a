//! The JSON of v2 auth, read and written as etcd's Go code does.
//!
//! Why not serde derive: etcd decodes request bodies and stored records with
//! `encoding/json` into Go structs, and clients see the differences. Keys
//! match fields case-insensitively (`{"USER":"a"}` is a user), unknown keys
//! are ignored, `null` leaves a field as it was, a repeated key decodes into
//! what the first one left, and only the first value of a body is read
//! (trailing bytes are never looked at). Slices keep Go's nil-versus-empty
//! distinction (`null` versus `[]`), which shows in responses and decides
//! whether an update "changed" anything. Output escapes as Go does (`<` as
//! `\u003c`), through the store's encoder.

use ferret_gocompat::json::write_str;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::api::v2::auth::model::{Permissions, Role, RwPermission, User};

/// A parsed JSON value that keeps object keys in order, duplicates included.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum GoValue {
    Null,
    Bool,
    Number,
    Str(String),
    Array(Vec<GoValue>),
    Object(Vec<(String, GoValue)>),
}

struct GoValueVisitor;

impl<'de> Visitor<'de> for GoValueVisitor {
    type Value = GoValue;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<GoValue, E> {
        Ok(GoValue::Bool)
    }
    fn visit_i64<E>(self, _: i64) -> Result<GoValue, E> {
        Ok(GoValue::Number)
    }
    fn visit_u64<E>(self, _: u64) -> Result<GoValue, E> {
        Ok(GoValue::Number)
    }
    fn visit_f64<E>(self, _: f64) -> Result<GoValue, E> {
        Ok(GoValue::Number)
    }
    fn visit_str<E>(self, s: &str) -> Result<GoValue, E> {
        Ok(GoValue::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<GoValue, E> {
        Ok(GoValue::Str(s))
    }
    fn visit_unit<E>(self) -> Result<GoValue, E> {
        Ok(GoValue::Null)
    }
    fn visit_none<E>(self) -> Result<GoValue, E> {
        Ok(GoValue::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<GoValue, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(GoValue::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GoValue, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, GoValue>()? {
            entries.push((k, v));
        }
        Ok(GoValue::Object(entries))
    }
}

impl<'de> Deserialize<'de> for GoValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GoValue, D::Error> {
        d.deserialize_any(GoValueVisitor)
    }
}

/// The first JSON value of `body`, as `json.NewDecoder(body).Decode` reads
/// it: what follows the value is ignored; an empty body is an error.
pub(crate) fn parse_first(body: &[u8]) -> Option<GoValue> {
    serde_json::Deserializer::from_slice(body)
        .into_iter::<GoValue>()
        .next()?
        .ok()
}

/// The value is of the wrong JSON type for its Go field.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TypeMismatch;

type Decoded = Result<(), TypeMismatch>;

/// Go's field matching: exact or case-insensitive, where the Kelvin sign
/// folds to `k` and the long s to `s`. Field names here are lowercase ASCII.
fn key_is(key: &str, field: &str) -> bool {
    let mut folded = key.chars().map(|c| match c {
        '\u{212A}' => 'k',
        '\u{017F}' => 's',
        c => c.to_ascii_lowercase(),
    });
    field.chars().all(|f| folded.next() == Some(f)) && folded.next().is_none()
}

fn decode_string(dst: &mut String, v: &GoValue) -> Decoded {
    match v {
        GoValue::Null => Ok(()),
        GoValue::Str(s) => {
            *dst = s.clone();
            Ok(())
        }
        _ => Err(TypeMismatch),
    }
}

/// A `[]string`: `null` makes it nil; an array replaces the elements, and a
/// `null` element keeps what that position held before, as Go reuses the
/// slice it decodes into.
fn decode_strings(dst: &mut Option<Vec<String>>, v: &GoValue) -> Decoded {
    match v {
        GoValue::Null => {
            *dst = None;
            Ok(())
        }
        GoValue::Array(items) => {
            let old = dst.take().unwrap_or_default();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let mut s = old.get(i).cloned().unwrap_or_default();
                decode_string(&mut s, item)?;
                out.push(s);
            }
            *dst = Some(out);
            Ok(())
        }
        _ => Err(TypeMismatch),
    }
}

/// Decodes an object into a struct through `field`; `null` leaves the
/// struct as it was.
fn decode_struct(v: &GoValue, mut field: impl FnMut(&str, &GoValue) -> Decoded) -> Decoded {
    match v {
        GoValue::Null => Ok(()),
        GoValue::Object(entries) => entries.iter().try_for_each(|(k, v)| field(k, v)),
        _ => Err(TypeMismatch),
    }
}

impl RwPermission {
    fn decode(&mut self, v: &GoValue) -> Decoded {
        decode_struct(v, |k, v| {
            if key_is(k, "read") {
                decode_strings(&mut self.read, v)
            } else if key_is(k, "write") {
                decode_strings(&mut self.write, v)
            } else {
                Ok(())
            }
        })
    }
}

impl Permissions {
    fn decode(&mut self, v: &GoValue) -> Decoded {
        decode_struct(v, |k, v| {
            if key_is(k, "kv") {
                self.kv.decode(v)
            } else {
                Ok(())
            }
        })
    }
}

/// A `*Permissions`: `null` makes it nil, an object fills it (allocating it
/// if nil).
fn decode_permissions_ptr(dst: &mut Option<Permissions>, v: &GoValue) -> Decoded {
    match v {
        GoValue::Null => {
            *dst = None;
            Ok(())
        }
        GoValue::Object(_) => dst.get_or_insert_with(Permissions::default).decode(v),
        _ => Err(TypeMismatch),
    }
}

impl User {
    pub(crate) fn decode(v: &GoValue) -> Result<User, TypeMismatch> {
        let mut u = User::default();
        decode_struct(v, |k, v| {
            if key_is(k, "user") {
                decode_string(&mut u.user, v)
            } else if key_is(k, "password") {
                decode_string(&mut u.password, v)
            } else if key_is(k, "roles") {
                decode_strings(&mut u.roles, v)
            } else if key_is(k, "grant") {
                decode_strings(&mut u.grant, v)
            } else if key_is(k, "revoke") {
                decode_strings(&mut u.revoke, v)
            } else {
                Ok(())
            }
        })?;
        Ok(u)
    }

    /// `json.Marshal` of etcd's `User`: password, grant and revoke are
    /// `omitempty`, roles is not (nil roles are `null`).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"user\":");
        write_str(out, self.user.as_bytes());
        if !self.password.is_empty() {
            out.extend_from_slice(b",\"password\":");
            write_str(out, self.password.as_bytes());
        }
        out.extend_from_slice(b",\"roles\":");
        write_strings(out, self.roles.as_deref());
        for (name, list) in [("grant", &self.grant), ("revoke", &self.revoke)] {
            if let Some(l) = list.as_deref().filter(|l| !l.is_empty()) {
                out.extend_from_slice(format!(",\"{name}\":").as_bytes());
                write_strings(out, Some(l));
            }
        }
        out.push(b'}');
    }
}

impl Role {
    pub(crate) fn decode(v: &GoValue) -> Result<Role, TypeMismatch> {
        let mut r = Role::default();
        decode_struct(v, |k, v| {
            if key_is(k, "role") {
                decode_string(&mut r.role, v)
            } else if key_is(k, "permissions") {
                r.permissions.decode(v)
            } else if key_is(k, "grant") {
                decode_permissions_ptr(&mut r.grant, v)
            } else if key_is(k, "revoke") {
                decode_permissions_ptr(&mut r.revoke, v)
            } else {
                Ok(())
            }
        })?;
        Ok(r)
    }

    /// `json.Marshal` of etcd's `Role`: grant and revoke are `omitempty`
    /// pointers, so they appear whenever they are non-nil, even empty.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"role\":");
        write_str(out, self.role.as_bytes());
        out.extend_from_slice(b",\"permissions\":");
        self.permissions.write_json(out);
        for (name, p) in [("grant", &self.grant), ("revoke", &self.revoke)] {
            if let Some(p) = p {
                out.extend_from_slice(format!(",\"{name}\":").as_bytes());
                p.write_json(out);
            }
        }
        out.push(b'}');
    }
}

impl Permissions {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"kv\":{\"read\":");
        write_strings(out, self.kv.read.as_deref());
        out.extend_from_slice(b",\"write\":");
        write_strings(out, self.kv.write.as_deref());
        out.extend_from_slice(b"}}");
    }
}

/// A Go `[]string`: `null` when nil.
pub(crate) fn write_strings(out: &mut Vec<u8>, list: Option<&[String]>) {
    let Some(list) = list else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'[');
    for (i, s) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, s.as_bytes());
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(body: &str) -> Option<User> {
        User::decode(&parse_first(body.as_bytes())?).ok()
    }

    fn role(body: &str) -> Option<Role> {
        Role::decode(&parse_first(body.as_bytes())?).ok()
    }

    fn user_json(u: &User) -> String {
        let mut out = Vec::new();
        u.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn role_json(r: &Role) -> String {
        let mut out = Vec::new();
        r.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn keys_match_case_insensitively_and_unknown_keys_are_ignored() {
        let u = user(r#"{"USER":"a","Password":"p","rOlEs":["x"],"extra":{"n":[1,2]}}"#).unwrap();
        assert_eq!(u.user, "a");
        assert_eq!(u.password, "p");
        assert_eq!(u.roles, Some(vec!["x".to_string()]));
        // U+212A KELVIN SIGN folds to k, as in Go.
        let r =
            role("{\"role\":\"r\",\"permissions\":{\"\u{212A}v\":{\"read\":[\"/a\"]}}}").unwrap();
        assert_eq!(r.permissions.kv.read, Some(vec!["/a".to_string()]));
    }

    #[test]
    fn only_the_first_value_is_read() {
        assert_eq!(user(r#"{"user":"a"} garbage"#).unwrap().user, "a");
        assert!(user("").is_none());
        assert!(user("  ").is_none());
        assert!(user(r#"{"user":"a""#).is_none());
    }

    #[test]
    fn wrong_types_fail_and_null_is_a_no_op() {
        assert!(user("[]").is_none());
        assert!(user(r#"{"user":1}"#).is_none());
        assert!(user(r#"{"roles":"x"}"#).is_none());
        assert_eq!(user("null"), Some(User::default()));
        let u = user(r#"{"user":"a","user":null,"roles":[null,"b"]}"#).unwrap();
        assert_eq!(u.user, "a");
        assert_eq!(u.roles, Some(vec![String::new(), "b".into()]));
    }

    #[test]
    fn nil_and_empty_slices_stay_apart() {
        assert_eq!(user(r#"{"user":"a"}"#).unwrap().roles, None);
        assert_eq!(user(r#"{"user":"a","roles":null}"#).unwrap().roles, None);
        assert_eq!(
            user(r#"{"user":"a","roles":[]}"#).unwrap().roles,
            Some(vec![])
        );
        let r = role(r#"{"role":"r","permissions":{"kv":{"read":[]}}}"#).unwrap();
        assert_eq!(
            role_json(&r),
            r#"{"role":"r","permissions":{"kv":{"read":[],"write":null}}}"#
        );
    }

    #[test]
    fn repeated_keys_decode_into_what_was_there() {
        let r = role(
            r#"{"role":"r","permissions":{"kv":{"read":["/a"]}},"permissions":{"kv":{"write":["/b"]}}}"#,
        )
        .unwrap();
        assert_eq!(r.permissions.kv.read, Some(vec!["/a".to_string()]));
        assert_eq!(r.permissions.kv.write, Some(vec!["/b".to_string()]));
        let u = user(r#"{"roles":["a","b"],"roles":[null]}"#).unwrap();
        assert_eq!(u.roles, Some(vec!["a".to_string()]));
    }

    #[test]
    fn empty_grant_pointer_is_kept_and_written() {
        let r = role(r#"{"role":"r","grant":{"kv":{}}}"#).unwrap();
        assert_eq!(r.grant, Some(Permissions::default()));
        assert_eq!(
            role_json(&r),
            r#"{"role":"r","permissions":{"kv":{"read":null,"write":null}},"grant":{"kv":{"read":null,"write":null}}}"#
        );
        assert_eq!(role(r#"{"role":"r","grant":null}"#).unwrap().grant, None);
    }

    #[test]
    fn user_json_omits_empty_fields_and_escapes_as_go() {
        let mut u = User {
            user: "a<b".into(),
            ..User::default()
        };
        assert_eq!(user_json(&u), r#"{"user":"a\u003cb","roles":null}"#);
        u.password = "$2a$10$x".into();
        u.roles = Some(vec!["r".into()]);
        u.grant = Some(vec![]);
        u.revoke = Some(vec!["z".into()]);
        assert_eq!(
            user_json(&u),
            r#"{"user":"a\u003cb","password":"$2a$10$x","roles":["r"],"revoke":["z"]}"#
        );
    }
}
