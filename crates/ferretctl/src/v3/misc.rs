//! `compaction` and `version`, as etcdctl 3.4.23 runs them
//! (`ctlv3/command/compaction_command.go`, `version_command.go`).
//!
//! Neither prints through the output format: `compaction` prints
//! `compacted revision N` whatever `-w` says (though an unknown format is
//! still refused when the client is made), and `version` makes no client
//! at all, so no global flag matters to it.

use ferret_gocompat::strconv::parse_int;
use ferret_proto::etcdserverpb::kv_client::KvClient;
use ferret_proto::etcdserverpb::CompactionRequest;

use super::cli::{exit, Exit, Invocation};
use super::client::{self, Client, Retry};

pub fn compaction(inv: &Invocation) -> Result<(), Exit> {
    if inv.args.len() != 1 {
        return Err(Exit::new(
            exit::BAD_ARGS,
            "compaction command needs 1 argument",
        ));
    }
    // etcdctl exits 1 (not 128) on a revision that does not parse.
    let revision =
        parse_int(&inv.args[0], 10).map_err(|e| Exit::new(exit::ERROR, e.to_string()))?;
    let physical = inv.bool("physical");
    let (cfg, _display) = client::config(inv)?;
    let mut c = Client::new(cfg)?;
    // clientv3 gives Compact no retry policy: not repeatable.
    c.unary(Retry::NonRepeatable, |ch, auth| {
        let req = auth.req(CompactionRequest { revision, physical });
        async move { KvClient::new(ch).compact(req).await }
    })?;
    println!("compacted revision {revision}");
    Ok(())
}

pub fn version(_inv: &Invocation) -> Result<(), Exit> {
    println!("etcdctl version: {}", super::cli::VERSION);
    println!("API version: {}", super::cli::API_VERSION);
    Ok(())
}
