//! `role add`, `delete`, `get`, `list`, `grant-permission` and
//! `revoke-permission`, as etcdctl 3.4.23 runs them
//! (`ctlv3/command/role_command.go`), with its printers' output.
//!
//! Each reads its arguments before making the client (where a bad `-w`
//! is refused), and sends its one request with `context.TODO()`: no time
//! limit. Reads (`get`, `list`) are sent again when the server was
//! unavailable; writes are not.
//!
//! Outputs: the simple format is etcdctl's sentences; the fields format
//! the response header (and `get`'s permissions, `list`'s roles); json
//! and protobuf the whole response; table none (exit 4, after the request
//! was made, as etcdctl's printer refuses it then).

use ferret_gocompat::strconv::quote;
use ferret_proto::authpb::permission::Type as PermType;
use ferret_proto::authpb::Permission;
use ferret_proto::etcdserverpb::auth_client::AuthClient;
use ferret_proto::etcdserverpb::{
    AuthRoleAddRequest, AuthRoleDeleteRequest, AuthRoleGetRequest, AuthRoleGetResponse,
    AuthRoleGrantPermissionRequest, AuthRoleListRequest, AuthRoleRevokePermissionRequest,
};

use super::cli::{exit, Exit, Invocation};
use super::client::{self, Client, Retry};
use super::kv::prefix_end;
use super::printer::{Display, Format};

fn bad_args(msg: impl Into<String>) -> Exit {
    Exit::new(exit::BAD_ARGS, msg)
}

pub fn add(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(bad_args(
            "role add command requires role name as its argument",
        ));
    }
    let name = inv.args[0].clone();
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary_unbounded(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(AuthRoleAddRequest { name: name.clone() });
        async move { AuthClient::new(ch).role_add(req).await }
    })?;
    display.change(&format!("Role {name} created"), &resp.header, &resp)
}

pub fn delete(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(bad_args(
            "role delete command requires role name as its argument",
        ));
    }
    let role = inv.args[0].clone();
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary_unbounded(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(AuthRoleDeleteRequest { role: role.clone() });
        async move { AuthClient::new(ch).role_delete(req).await }
    })?;
    display.change(&format!("Role {role} deleted"), &resp.header, &resp)
}

pub fn get(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(bad_args(
            "role get command requires role name as its argument",
        ));
    }
    let role = inv.args[0].clone();
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = get_role(&mut c, &role)?;
    let printed = print_get(&mut display, &role, &resp);
    display.flush();
    printed
}

/// clientv3's `RoleGet` (repeatable, no time limit).
pub fn get_role(c: &mut Client, role: &str) -> Result<AuthRoleGetResponse, Exit> {
    c.unary_unbounded(Retry::Repeatable, |ch, auth| {
        let req = auth.req(AuthRoleGetRequest {
            role: role.to_string(),
        });
        async move { AuthClient::new(ch).role_get(req).await }
    })
}

/// etcdctl's printers of `RoleGet`. The simple format lists the
/// permissions that read, then those that write (readwrite ones in both):
/// a single key as itself, a range as `[key, end)` (`[key, <open ended>`
/// for a range end of `"\0"`), followed by ` (prefix key)` when the end
/// is the key's prefix end. Keys are printed as their bytes.
pub fn print_get(display: &mut Display, role: &str, r: &AuthRoleGetResponse) -> Result<(), Exit> {
    match display.format {
        Format::Simple => {
            display.line(&format!("Role {role}"));
            display.line("KV Read:");
            for p in &r.perm {
                if p.perm_type == PermType::Read as i32 || p.perm_type == PermType::Readwrite as i32
                {
                    display.bytes_line(&permission_line(p));
                }
            }
            display.line("KV Write:");
            for p in &r.perm {
                if p.perm_type == PermType::Write as i32
                    || p.perm_type == PermType::Readwrite as i32
                {
                    display.bytes_line(&permission_line(p));
                }
            }
            Ok(())
        }
        Format::Fields => {
            display.header_fields(&r.header);
            for p in &r.perm {
                // Go's Println puts a space after `"PermType" : ` too.
                display.line(&format!("\"PermType\" :  {}", perm_type_name(p.perm_type)));
                display.line(&format!("\"Key\" : {}", quote(&p.key)));
                display.line(&format!("\"RangeEnd\" : {}", quote(&p.range_end)));
            }
            Ok(())
        }
        _ => display.whole(r),
    }
}

/// One permission as `role get` lists it, after a tab.
fn permission_line(p: &Permission) -> Vec<u8> {
    let mut l = b"\t".to_vec();
    if p.range_end.is_empty() {
        l.extend_from_slice(&p.key);
        return l;
    }
    l.push(b'[');
    l.extend_from_slice(&p.key);
    if p.range_end[..] != b"\0"[..] {
        l.extend_from_slice(b", ");
        l.extend_from_slice(&p.range_end);
        l.push(b')');
    } else {
        l.extend_from_slice(b", <open ended>");
    }
    if prefix_end(&p.key) == p.range_end[..] {
        l.extend_from_slice(b" (prefix ");
        l.extend_from_slice(&p.key);
        l.push(b')');
    }
    l
}

/// The generated Go `String()` of `authpb.Permission_Type`: its name, or
/// the number for a value it does not know.
fn perm_type_name(t: i32) -> String {
    match PermType::try_from(t) {
        Ok(PermType::Read) => "READ".into(),
        Ok(PermType::Write) => "WRITE".into(),
        Ok(PermType::Readwrite) => "READWRITE".into(),
        Err(_) => t.to_string(),
    }
}

pub fn list(inv: &Invocation) -> Result<(), Exit> {
    if !inv.args.is_empty() {
        return Err(bad_args("role list command requires no arguments"));
    }
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary_unbounded(Retry::Repeatable, |ch, auth| {
        let req = auth.req(AuthRoleListRequest {});
        async move { AuthClient::new(ch).role_list(req).await }
    })?;
    let printed = match display.format {
        Format::Simple => {
            for r in &resp.roles {
                display.line(r);
            }
            Ok(())
        }
        Format::Fields => {
            display.header_fields(&resp.header);
            let mut l = String::from("\"Roles\" :");
            for r in &resp.roles {
                l.push(' ');
                l.push_str(&quote(r));
            }
            display.line(&l);
            Ok(())
        }
        _ => display.whole(&resp),
    };
    display.flush();
    printed
}

/// clientv3's `StrToPermissionType`: the name in any case.
fn permission_type(s: &str) -> Result<i32, Exit> {
    match s.to_uppercase().as_str() {
        "READ" => Ok(PermType::Read as i32),
        "WRITE" => Ok(PermType::Write as i32),
        "READWRITE" => Ok(PermType::Readwrite as i32),
        _ => Err(bad_args(format!("invalid permission type: {s}"))),
    }
}

/// etcdctl's `permRange`: the key and range end of a permission from
/// `<key> [endkey]` and `--prefix` / `--from-key`. An empty key is
/// `"\0"`: with either flag every key (range end `"\0"`), else the key
/// `"\0"` alone; an end key is then ignored.
fn perm_range(args: &[String], prefix: bool, from_key: bool) -> Result<(Vec<u8>, Vec<u8>), Exit> {
    let key = args[0].as_bytes();
    if key.is_empty() {
        if prefix && from_key {
            return Err(bad_args(
                "--from-key and --prefix flags are mutually exclusive",
            ));
        }
        let end = if prefix || from_key {
            b"\0".to_vec()
        } else {
            Vec::new()
        };
        return Ok((b"\0".to_vec(), end));
    }
    if args.len() == 1 {
        if prefix {
            if from_key {
                return Err(bad_args(
                    "--from-key and --prefix flags are mutually exclusive",
                ));
            }
            return Ok((key.to_vec(), prefix_end(key)));
        }
        if from_key {
            return Ok((key.to_vec(), b"\0".to_vec()));
        }
        return Ok((key.to_vec(), Vec::new()));
    }
    if prefix {
        return Err(bad_args("unexpected endkey argument with --prefix flag"));
    }
    if from_key {
        return Err(bad_args("unexpected endkey argument with --from-key flag"));
    }
    Ok((key.to_vec(), args[1].as_bytes().to_vec()))
}

pub fn grant_permission(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() < 3 {
        return Err(bad_args(
            "role grant command requires role name, permission type, and key [endkey] as its argument",
        ));
    }
    let perm_type = permission_type(&inv.args[1])?;
    let (key, range_end) = perm_range(&inv.args[2..], inv.bool("prefix"), inv.bool("from-key"))?;
    let name = inv.args[0].clone();
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let perm = Permission {
        perm_type,
        key: key.into(),
        range_end: range_end.into(),
    };
    let resp = c.unary_unbounded(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(AuthRoleGrantPermissionRequest {
            name: name.clone(),
            perm: Some(perm.clone()),
        });
        async move { AuthClient::new(ch).role_grant_permission(req).await }
    })?;
    display.change(&format!("Role {name} updated"), &resp.header, &resp)
}

pub fn revoke_permission(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() < 2 {
        return Err(bad_args(
            "role revoke-permission command requires role name and key [endkey] as its argument",
        ));
    }
    let (key, range_end) = perm_range(&inv.args[1..], inv.bool("prefix"), inv.bool("from-key"))?;
    let role = inv.args[0].clone();
    let (cfg, mut display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    let resp = c.unary_unbounded(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(AuthRoleRevokePermissionRequest {
            role: role.clone(),
            key: key.clone().into(),
            range_end: range_end.clone().into(),
        });
        async move { AuthClient::new(ch).role_revoke_permission(req).await }
    })?;
    let printed = match display.format {
        Format::Simple => {
            // The key as given (an empty one, not the "\0" sent).
            display.bytes_line(&revoked_line(&role, inv.args[1].as_bytes(), &range_end));
            Ok(())
        }
        Format::Fields => {
            display.header_fields(&resp.header);
            Ok(())
        }
        _ => display.whole(&resp),
    };
    display.flush();
    printed
}

/// etcdctl's simple printer of `RoleRevokePermission`.
fn revoked_line(role: &str, key: &[u8], end: &[u8]) -> Vec<u8> {
    let mut l = Vec::new();
    if end.is_empty() {
        l.extend_from_slice(b"Permission of key ");
        l.extend_from_slice(key);
    } else if end != b"\0" {
        l.extend_from_slice(b"Permission of range [");
        l.extend_from_slice(key);
        l.extend_from_slice(b", ");
        l.extend_from_slice(end);
        l.push(b')');
    } else {
        l.extend_from_slice(b"Permission of range [");
        l.extend_from_slice(key);
        l.extend_from_slice(b", <open ended>");
    }
    l.extend_from_slice(format!(" is revoked from role {role}").as_bytes());
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(t: PermType, key: &[u8], end: &[u8]) -> Permission {
        Permission {
            perm_type: t as i32,
            key: key.to_vec().into(),
            range_end: end.to_vec().into(),
        }
    }

    #[test]
    fn role_get_as_etcdctl_prints_it() {
        let r = AuthRoleGetResponse {
            header: None,
            perm: vec![
                perm(PermType::Read, b"\0", b"\0"),
                perm(PermType::Write, b"\0", b""),
                perm(PermType::Read, b"a", b"b"),
                perm(PermType::Readwrite, b"foo", b""),
                perm(PermType::Read, b"p", b"q"),
                perm(PermType::Write, b"zz", b"\0"),
                perm(PermType::Read, b"\xff", b"\0"),
            ],
        };
        let mut d = Display::from_flags("simple", false).unwrap();
        print_get(&mut d, "r1", &r).unwrap();
        assert_eq!(
            d.take_output(),
            b"Role r1\nKV Read:\n\t[\0, <open ended>\n\t[a, b) (prefix a)\n\tfoo\n\t[p, q) (prefix p)\n\
              \t[\xff, <open ended> (prefix \xff)\nKV Write:\n\t\0\n\tfoo\n\t[zz, <open ended>\n"
                .to_vec()
        );
        let mut d = Display::from_flags("fields", false).unwrap();
        print_get(&mut d, "r1", &r).unwrap();
        let out = String::from_utf8(d.take_output()).unwrap();
        assert!(
            out.contains("\"PermType\" :  READ\n\"Key\" : \"\\x00\"\n\"RangeEnd\" : \"\\x00\"\n")
        );
        assert_eq!(perm_type_name(7), "7");
    }

    #[test]
    fn permission_ranges_as_etcdctl() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            perm_range(&a(&["foo"]), true, false).unwrap(),
            (b"foo".to_vec(), b"fop".to_vec())
        );
        assert_eq!(
            perm_range(&a(&["", "x"]), false, false).unwrap(),
            (b"\0".to_vec(), vec![])
        );
        assert_eq!(
            perm_range(&a(&[""]), false, true).unwrap(),
            (b"\0".to_vec(), b"\0".to_vec())
        );
        assert_eq!(
            perm_range(&a(&["a", "b"]), true, false).unwrap_err().msg,
            "unexpected endkey argument with --prefix flag"
        );
        assert_eq!(
            perm_range(&a(&["a"]), true, true).unwrap_err().msg,
            "--from-key and --prefix flags are mutually exclusive"
        );
        assert_eq!(permission_type("ReadWrite").unwrap(), 2);
        assert_eq!(
            permission_type("rw").unwrap_err().msg,
            "invalid permission type: rw"
        );
    }

    #[test]
    fn revocations_as_etcdctl() {
        assert_eq!(
            revoked_line("r", b"", b""),
            b"Permission of key  is revoked from role r".to_vec()
        );
        assert_eq!(
            revoked_line("r", b"p", b"q"),
            b"Permission of range [p, q) is revoked from role r".to_vec()
        );
        assert_eq!(
            revoked_line("r", b"zz", b"\0"),
            b"Permission of range [zz, <open ended> is revoked from role r".to_vec()
        );
    }
}
