//! Child processes that cannot outlive their test.

use std::process::{Child, Output};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A child process killed and reaped on drop (also when a test panics).
pub struct Proc(pub Option<Child>);

impl Proc {
    /// Kills and reaps the process (idempotent).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.0.is_some()
    }

    /// Whether the process has exited (reaping it), with its status.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let st = self.0.as_mut()?.try_wait().ok()??;
        self.0 = None;
        Some(st)
    }

    /// Sends a signal (`libc::SIGSTOP`, `SIGCONT`, `SIGTERM`, ...); false
    /// if there is no process or the signal could not be sent.
    pub fn signal(&self, sig: libc::c_int) -> bool {
        match self.pid() {
            // SAFETY: plain kill(2) on our own child's pid.
            Some(pid) => unsafe { libc::kill(pid as libc::pid_t, sig) == 0 },
            None => false,
        }
    }

    /// SIGSTOP: the process stays, frozen.
    pub fn pause(&self) -> bool {
        self.signal(libc::SIGSTOP)
    }

    /// SIGCONT.
    pub fn resume(&self) -> bool {
        self.signal(libc::SIGCONT)
    }

    /// SIGTERM: asks the process to stop.
    pub fn terminate(&self) -> bool {
        self.signal(libc::SIGTERM)
    }

    /// Sends SIGINT and waits (bounded) for the process to end; returns
    /// its output. Used for watches, which etcdctl ends with exit 0 on ^C.
    pub fn interrupt(&mut self) -> Output {
        self.signal(libc::SIGINT);
        let mut c = self.0.take().expect("process still running");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                break;
            }
            sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        c.wait_with_output().expect("collect output")
    }

    /// Waits up to `limit` for the process to end; its output, or `None`
    /// (the process still runs, and is killed on drop).
    pub fn wait_output(&mut self, limit: Duration) -> Option<Output> {
        let c = self.0.as_mut()?;
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return self.0.take().map(|c| c.wait_with_output().unwrap());
            }
            sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
