//! Telling systemd that the member serves (`sd_notify(3)`), as etcd does
//! under a `Type=notify` unit such as Debian's `etcd.service`: `READY=1`
//! on the datagram socket `$NOTIFY_SOCKET` names, once the member has
//! joined its cluster and every client listener accepts connections.
//! Without `NOTIFY_SOCKET` (not started by systemd) it does nothing.

/// Sends `READY=1`; a failure is logged with etcd's message and the
/// member goes on serving (systemd then times the start out, as it would
/// etcd's).
pub fn notify_ready() {
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::error!(error = %e, "failed to notify systemd for readiness");
    }
}
