//! etcdctl's output formats (`-w simple|fields|json|protobuf|table`): one
//! method per kind of response, each writing what etcdctl's printer of
//! that format writes, or refusing as etcdctl does where a format does not
//! apply (`table not supported as output format`, exit 4).
//!
//! Output is collected and written by `flush`, once the command knows it
//! succeeded. The building blocks (`line`, `whole`, `kv_simple`,
//! `kv_fields`, `header_fields`, `unsupported`) are public so that each
//! command's module prints its own responses.

use std::io::Write;

use ferret_gocompat::strconv::quote;
use ferret_proto::etcdserverpb::{
    response_op, DeleteRangeResponse, PutResponse, RangeResponse, ResponseHeader, TxnResponse,
    WatchResponse,
};
use ferret_proto::mvccpb::event::EventType;
use ferret_proto::mvccpb::KeyValue;
use prost::Message;

use super::cli::{exit, Exit};
use super::gojson::{self, GoJson};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Simple,
    Fields,
    Json,
    Protobuf,
    Table,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Simple => "simple",
            Format::Fields => "fields",
            Format::Json => "json",
            Format::Protobuf => "protobuf",
            Format::Table => "table",
        }
    }
}

/// The chosen format and its options.
pub struct Display {
    pub format: Format,
    /// `--hex`: keys and values as `\x..` escapes (simple format).
    pub hex: bool,
    /// `get --print-value-only` (simple format).
    pub value_only: bool,
    out: Vec<u8>,
}

impl Display {
    /// etcdctl's `NewPrinter`; an unknown format is exit 4.
    pub fn from_flags(format: &str, hex: bool) -> Result<Display, Exit> {
        let format = match format {
            "simple" => Format::Simple,
            "fields" => Format::Fields,
            "json" => Format::Json,
            "protobuf" => Format::Protobuf,
            "table" => Format::Table,
            _ => return Err(Exit::new(exit::BAD_FEATURE, "unsupported output format")),
        };
        Ok(Display {
            format,
            hex,
            value_only: false,
            out: Vec::new(),
        })
    }

    /// `<format> not supported as output format`, exit 4.
    pub fn unsupported(&self) -> Exit {
        Exit::new(
            exit::BAD_FEATURE,
            format!("{} not supported as output format", self.format.name()),
        )
    }

    /// What a format that prints the whole response does with it: the
    /// protobuf encoding, or Go's JSON of etcd's struct.
    pub fn whole<M: GoJson>(&mut self, m: &M) -> Result<(), Exit> {
        match self.format {
            Format::Protobuf => {
                self.out.extend_from_slice(&m.encode_to_vec());
                Ok(())
            }
            Format::Json => {
                let json = gojson::encode(m);
                self.line(&json);
                Ok(())
            }
            _ => Err(self.unsupported()),
        }
    }

    /// What etcdctl prints for a change (auth, user and role commands):
    /// the simple format's sentence, the header alone as fields, the whole
    /// response in the other formats; then it is flushed.
    pub fn change<M: GoJson>(
        &mut self,
        sentence: &str,
        header: &Option<ResponseHeader>,
        resp: &M,
    ) -> Result<(), Exit> {
        let printed = match self.format {
            Format::Simple => {
                self.line(sentence);
                Ok(())
            }
            Format::Fields => {
                self.header_fields(header);
                Ok(())
            }
            _ => self.whole(resp),
        };
        self.flush();
        printed
    }

    pub fn line(&mut self, s: &str) {
        self.out.extend_from_slice(s.as_bytes());
        self.out.push(b'\n');
    }

    pub fn bytes_line(&mut self, b: &[u8]) {
        self.out.extend_from_slice(b);
        self.out.push(b'\n');
    }

    /// etcdctl's `printKV`: the key (unless values only), then the value.
    pub fn kv_simple(&mut self, kv: &KeyValue) {
        if self.hex {
            let (k, v) = (hex_escaped(&kv.key), hex_escaped(&kv.value));
            if !self.value_only {
                self.line(&k);
            }
            self.line(&v);
        } else {
            if !self.value_only {
                self.bytes_line(&kv.key.clone());
            }
            self.bytes_line(&kv.value.clone());
        }
    }

    pub fn kv_fields(&mut self, prefix: &str, kv: &KeyValue) {
        self.line(&format!("\"{prefix}Key\" : {}", quote(&kv.key)));
        self.line(&format!(
            "\"{prefix}CreateRevision\" : {}",
            kv.create_revision
        ));
        self.line(&format!("\"{prefix}ModRevision\" : {}", kv.mod_revision));
        self.line(&format!("\"{prefix}Version\" : {}", kv.version));
        self.line(&format!("\"{prefix}Value\" : {}", quote(&kv.value)));
        self.line(&format!("\"{prefix}Lease\" : {}", kv.lease));
    }

    pub fn header_fields(&mut self, h: &Option<ResponseHeader>) {
        let h = h.unwrap_or_default();
        self.line(&format!("\"ClusterID\" : {}", h.cluster_id));
        self.line(&format!("\"MemberID\" : {}", h.member_id));
        self.line(&format!("\"Revision\" : {}", h.revision));
        self.line(&format!("\"RaftTerm\" : {}", h.raft_term));
    }

    pub fn get(&mut self, r: &RangeResponse) -> Result<(), Exit> {
        match self.format {
            Format::Simple => {
                for kv in &r.kvs {
                    self.kv_simple(kv);
                }
                Ok(())
            }
            Format::Fields => {
                self.header_fields(&r.header);
                for kv in &r.kvs {
                    self.kv_fields("", kv);
                }
                self.line(&format!("\"More\" : {}", r.more));
                self.line(&format!("\"Count\" : {}", r.count));
                Ok(())
            }
            _ => self.whole(r),
        }
    }

    pub fn put(&mut self, r: &PutResponse) -> Result<(), Exit> {
        match self.format {
            Format::Simple => {
                self.line("OK");
                if let Some(kv) = &r.prev_kv {
                    self.kv_simple(kv);
                }
                Ok(())
            }
            Format::Fields => {
                self.header_fields(&r.header);
                if let Some(kv) = &r.prev_kv {
                    self.kv_fields("Prev", kv);
                }
                Ok(())
            }
            _ => self.whole(r),
        }
    }

    pub fn del(&mut self, r: &DeleteRangeResponse) -> Result<(), Exit> {
        match self.format {
            Format::Simple => {
                self.line(&r.deleted.to_string());
                for kv in &r.prev_kvs {
                    self.kv_simple(kv);
                }
                Ok(())
            }
            Format::Fields => {
                self.header_fields(&r.header);
                self.line(&format!("\"Deleted\" : {}", r.deleted));
                for kv in &r.prev_kvs {
                    self.kv_fields("Prev", kv);
                }
                Ok(())
            }
            _ => self.whole(r),
        }
    }

    /// `txn`: SUCCESS or FAILURE, then each response as get, put or del
    /// print theirs (simple: after an empty line; fields: after the
    /// transaction's header and outcome).
    pub fn txn(&mut self, r: &TxnResponse) -> Result<(), Exit> {
        match self.format {
            Format::Simple | Format::Fields => {
                if self.format == Format::Simple {
                    self.line(if r.succeeded { "SUCCESS" } else { "FAILURE" });
                } else {
                    self.header_fields(&r.header);
                    self.line(&format!("\"Succeeded\" : {}", r.succeeded));
                }
                for op in &r.responses {
                    if self.format == Format::Simple {
                        self.line("");
                    }
                    match &op.response {
                        Some(response_op::Response::ResponseRange(g)) => self.get(g)?,
                        Some(response_op::Response::ResponsePut(p)) => self.put(p)?,
                        Some(response_op::Response::ResponseDeleteRange(d)) => self.del(d)?,
                        // A nested transaction: etcdctl prints Go's %+v of
                        // it; ferretctl says what it is.
                        Some(response_op::Response::ResponseTxn(_)) | None => {
                            self.line("unexpected response (a nested transaction)")
                        }
                    }
                }
                Ok(())
            }
            _ => self.whole(r),
        }
    }

    /// One watch response: per event its type, the previous key-value
    /// (with `--prev-kv`) and the key-value.
    pub fn watch(&mut self, r: &WatchResponse) -> Result<(), Exit> {
        let kind = |t: i32| {
            if t == EventType::Delete as i32 {
                "DELETE"
            } else {
                "PUT"
            }
        };
        match self.format {
            Format::Simple => {
                for e in &r.events {
                    self.line(kind(e.r#type));
                    if let Some(p) = &e.prev_kv {
                        self.kv_simple(p);
                    }
                    self.kv_simple(&e.kv.clone().unwrap_or_default());
                }
                Ok(())
            }
            Format::Fields => {
                self.header_fields(&r.header);
                for e in &r.events {
                    self.line(&format!("\"Type\" : {}", kind(e.r#type)));
                    if let Some(p) = &e.prev_kv {
                        self.kv_fields("Prev", p);
                    }
                    self.kv_fields("", &e.kv.clone().unwrap_or_default());
                }
                Ok(())
            }
            Format::Json => {
                let line = gojson::watch_response(r);
                self.line(&line);
                Ok(())
            }
            // etcdctl marshals a WatchResponse made of the same fields.
            Format::Protobuf => {
                let w = WatchResponse {
                    header: Some(r.header.unwrap_or_default()),
                    events: r.events.clone(),
                    compact_revision: r.compact_revision,
                    canceled: r.canceled,
                    created: r.created,
                    ..Default::default()
                };
                self.out.extend_from_slice(&w.encode_to_vec());
                Ok(())
            }
            Format::Table => Err(self.unsupported()),
        }
    }

    /// What was printed and not flushed yet (for the commands' tests).
    #[cfg(test)]
    pub fn printed(&self) -> &[u8] {
        &self.out
    }

    /// What was printed and not yet flushed (and forgets it): what the
    /// command modules' tests look at.
    #[cfg(test)]
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Writes what was printed to stdout (and forgets it).
    pub fn flush(&mut self) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&self.out);
        let _ = out.flush();
        self.out.clear();
    }
}

/// etcdctl's `addHexPrefix(hex.EncodeToString(b))`: `\x` before each byte.
fn hex_escaped(b: &[u8]) -> String {
    b.iter().map(|x| format!("\\x{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.as_bytes().to_vec().into(),
            value: v.as_bytes().to_vec().into(),
            create_revision: 2,
            mod_revision: 3,
            version: 2,
            lease: 0,
        }
    }

    #[test]
    fn simple_and_fields_as_etcdctl() {
        let mut d = Display::from_flags("simple", false).unwrap();
        d.get(&RangeResponse {
            kvs: vec![kv("foo", "bar")],
            count: 1,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(d.out, b"foo\nbar\n");
        let mut d = Display::from_flags("simple", true).unwrap();
        d.put(&PutResponse {
            prev_kv: Some(kv("a", "\n")),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&d.out), "OK\n\\x61\n\\x0a\n");
        let mut d = Display::from_flags("fields", false).unwrap();
        d.del(&DeleteRangeResponse {
            deleted: 1,
            prev_kvs: vec![kv("a", "b\"")],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&d.out),
            "\"ClusterID\" : 0\n\"MemberID\" : 0\n\"Revision\" : 0\n\"RaftTerm\" : 0\n\"Deleted\" : 1\n\
             \"PrevKey\" : \"a\"\n\"PrevCreateRevision\" : 2\n\"PrevModRevision\" : 3\n\"PrevVersion\" : 2\n\
             \"PrevValue\" : \"b\\\"\"\n\"PrevLease\" : 0\n"
        );
    }

    #[test]
    fn unknown_and_unsupported_formats() {
        assert_eq!(Display::from_flags("xml", false).err().unwrap().code, 4);
        let mut d = Display::from_flags("table", false).unwrap();
        let e = d.get(&RangeResponse::default()).unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (4, "table not supported as output format")
        );
    }
}
