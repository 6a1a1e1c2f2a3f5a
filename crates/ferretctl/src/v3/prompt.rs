//! Passwords as etcdctl reads them: speakeasy's prompt (`/bin/stty -echo`
//! around a line read from stdin, signals caught meanwhile) and, with
//! `--interactive=false`, the first word Go's `fmt.Scanf("%s")` reads.
//! Used by `user add`, `user passwd` and `--user` without a password.

use std::io::{Read, Write};

use super::cli::{exit, Exit};

/// A password read from stdin, as a string etcd's API can carry: Go
/// sends any bytes; prost's strings must be UTF-8, so other bytes are
/// refused rather than altered.
pub fn password_text(bytes: Vec<u8>) -> Result<String, Exit> {
    String::from_utf8(bytes).map_err(|_| {
        Exit::new(
            exit::ERROR,
            "the password read is not valid UTF-8, which ferretctl cannot send (etcd's API takes it as a string)",
        )
    })
}

/// etcdctl's `readPasswordInteractive`: the password twice, which must
/// agree and not be empty.
pub fn read_password_interactive(name: &str) -> Result<String, Exit> {
    let bad = |msg: String| Exit::new(exit::BAD_ARGS, msg);
    let first = ask_password(&format!("Password of {name}: "))
        .map_err(|e| bad(format!("failed to ask password: {e}")))?;
    if first.is_empty() {
        return Err(bad("empty password".into()));
    }
    let second = ask_password(&format!("Type password of {name} again for confirmation: "))
        .map_err(|e| bad(format!("failed to ask password: {e}")))?;
    if first != second {
        return Err(bad("given passwords are different".into()));
    }
    password_text(first)
}

/// speakeasy's `Ask`: the prompt on stdout, echo turned off by running
/// `/bin/stty -echo` on the process's stdin, stdout and stderr (with an
/// empty environment, as Go's `syscall.ForkExec` runs it), a line read
/// from stdin one byte at a time (without a final `\r`, trimmed of white
/// space), echo turned on again the same way, and a new line on stdout.
/// A signal meanwhile (HUP, INT, QUIT, TERM) turns echo on and exits 255,
/// as speakeasy's handler does. `Err` with speakeasy's error text.
pub fn ask_password(prompt: &str) -> Result<Vec<u8>, String> {
    {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(prompt.as_bytes());
        let _ = out.flush();
    }
    let result = read_without_echo();
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    result
}

fn read_without_echo() -> Result<Vec<u8>, String> {
    let saved = catch_signals();
    if let Err(e) = stty("-echo") {
        // speakeasy returns before it defers restoring anything.
        return Err(format!(
            "failed turning off console echo for password entry:\n\t{e}"
        ));
    }
    let line = read_line();
    let _ = stty("echo");
    restore_signals(&saved);
    let mut line = line.map_err(|e| format!("failed during password entry: {e}"))?;
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(trim_space(&line).to_vec())
}

/// Runs `/bin/stty <arg>` as speakeasy does and waits for it.
fn stty(arg: &str) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new("/bin/stty")
        .arg0("stty")
        .arg(arg)
        .env_clear()
        .spawn()
        .map_err(|e| go_errno_text(&e))?;
    let _ = child.wait();
    Ok(())
}

/// Go's text of a `syscall.Errno` (glibc's, its first letter lowered).
fn go_errno_text(e: &std::io::Error) -> String {
    let text = match e.raw_os_error() {
        // SAFETY: strerror returns a pointer to a NUL-terminated string
        // that stays valid until the next call; it is copied at once.
        Some(n) => unsafe {
            std::ffi::CStr::from_ptr(libc::strerror(n))
                .to_string_lossy()
                .into_owned()
        },
        None => e.to_string(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// speakeasy's `readline`: bytes up to a new line or the end of input.
fn read_line() -> Result<Vec<u8>, std::io::Error> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    let mut stdin = std::io::stdin().lock();
    loop {
        match stdin.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(line)
}

/// Go's `strings.TrimSpace` of bytes that may not be UTF-8 (white space
/// is only ever valid UTF-8).
fn trim_space(b: &[u8]) -> &[u8] {
    let is_space_at_start = |b: &[u8]| -> Option<usize> {
        let n = utf8_len_at(b)?;
        let c = std::str::from_utf8(&b[..n]).ok()?.chars().next()?;
        c.is_whitespace().then_some(n)
    };
    let mut start = 0;
    while let Some(n) = is_space_at_start(&b[start..]) {
        start += n;
    }
    let mut end = b.len();
    'outer: while end > start {
        for n in 1..=4.min(end - start) {
            if let Ok(s) = std::str::from_utf8(&b[end - n..end]) {
                if s.chars().count() == 1 && s.chars().all(char::is_whitespace) {
                    end -= n;
                    continue 'outer;
                }
                break;
            }
        }
        break;
    }
    &b[start..end]
}

/// The length of the valid UTF-8 character `b` starts with, if it does.
fn utf8_len_at(b: &[u8]) -> Option<usize> {
    (1..=4.min(b.len())).find(|&n| std::str::from_utf8(&b[..n]).is_ok())
}

/// The signals speakeasy watches while echo is off.
const WATCHED: [libc::c_int; 4] = [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM];

/// speakeasy's `catchSignal`: `/bin/stty echo`, then exit -1 (255). Only
/// async-signal-safe calls: fork, execve, waitpid, _exit.
extern "C" fn on_signal(_: libc::c_int) {
    // SAFETY: every call is async-signal-safe and every pointer points to
    // a static NUL-terminated string or to the arrays on this stack.
    unsafe {
        let path = c"/bin/stty".as_ptr();
        let argv = [c"stty".as_ptr(), c"echo".as_ptr(), std::ptr::null()];
        let envp: [*const libc::c_char; 1] = [std::ptr::null()];
        let pid = libc::fork();
        if pid == 0 {
            libc::execve(path, argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
        if pid > 0 {
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
        }
        libc::_exit(255);
    }
}

fn catch_signals() -> Vec<(libc::c_int, libc::sigaction)> {
    let mut saved = Vec::new();
    for sig in WATCHED {
        // SAFETY: sigaction with zeroed, then filled, structures; the
        // handler only makes async-signal-safe calls.
        unsafe {
            let mut new: libc::sigaction = std::mem::zeroed();
            new.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut new.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, &new, &mut old) == 0 {
                saved.push((sig, old));
            }
        }
    }
    saved
}

fn restore_signals(saved: &[(libc::c_int, libc::sigaction)]) {
    for (sig, old) in saved {
        // SAFETY: puts back the action sigaction returned.
        unsafe {
            libc::sigaction(*sig, old, std::ptr::null_mut());
        }
    }
}

/// Go's `fmt.Scanf("%s", &s)` on stdin (etcdctl's `--interactive=false`):
/// white space skipped (a new line first is an error: nothing is read),
/// then the word up to the next white space; what Go reads past the word
/// (the rune after it, or the bytes of an invalid one) is read here too,
/// and lost, as it is with Go. Bytes that are not UTF-8 become U+FFFD, as
/// Go's rune reader makes them.
pub fn scan_word() -> String {
    let mut r = RuneReader::default();
    let mut word = String::new();
    // SkipSpace.
    loop {
        let Some(c) = r.read() else {
            return word;
        };
        if c == '\r' {
            match r.read() {
                Some('\n') => {
                    r.unread('\n');
                    continue;
                }
                Some(d) => r.unread(d),
                None => {}
            }
        }
        if c == '\n' {
            return word;
        }
        if !c.is_whitespace() {
            r.unread(c);
            break;
        }
    }
    // The word.
    while let Some(c) = r.read() {
        if c.is_whitespace() {
            break;
        }
        word.push(c);
    }
    word
}

/// Go's `fmt.readRune` over stdin: one byte read at a time, as many as a
/// rune needs; an invalid sequence is U+FFFD and its extra bytes wait
/// for the next read; one rune may be put back.
#[derive(Default)]
struct RuneReader {
    pending: Vec<u8>,
    peeked: Option<char>,
}

impl RuneReader {
    fn byte(&mut self) -> Option<u8> {
        if !self.pending.is_empty() {
            return Some(self.pending.remove(0));
        }
        let mut b = [0u8; 1];
        let mut stdin = std::io::stdin().lock();
        loop {
            match stdin.read(&mut b) {
                Ok(0) => return None,
                Ok(_) => return Some(b[0]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }

    fn read(&mut self) -> Option<char> {
        if let Some(c) = self.peeked.take() {
            return Some(c);
        }
        let first = self.byte()?;
        if first < 0x80 {
            return Some(char::from(first));
        }
        let mut buf = vec![first];
        while !full_rune(&buf) {
            match self.byte() {
                Some(b) => buf.push(b),
                None => break,
            }
        }
        match std::str::from_utf8(&buf) {
            Ok(s) => s.chars().next(),
            Err(_) => {
                self.pending.splice(0..0, buf[1..].iter().copied());
                Some(char::REPLACEMENT_CHARACTER)
            }
        }
    }

    fn unread(&mut self, c: char) {
        self.peeked = Some(c);
    }
}

/// Go's `utf8.FullRune`: `b` holds a whole rune, or bytes that cannot
/// begin one.
fn full_rune(b: &[u8]) -> bool {
    match std::str::from_utf8(b) {
        Ok(s) => !s.is_empty(),
        Err(e) => e.error_len().is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_white_space_as_go() {
        assert_eq!(trim_space(b"  pw \t"), b"pw");
        assert_eq!(trim_space(b"\xc2\xa0pw\xe3\x80\x80"), b"pw");
        assert_eq!(trim_space(b" \xff pw \xff "), b"\xff pw \xff");
        assert_eq!(trim_space(b"   "), b"");
        assert_eq!(trim_space(b""), b"");
    }

    #[test]
    fn full_runes_as_go() {
        assert!(full_rune(b"a"));
        assert!(!full_rune(b"\xe2"));
        assert!(!full_rune(b"\xe2\x82"));
        assert!(full_rune(b"\xe2\x82\xac"));
        assert!(full_rune(b"\xe2a"));
        assert!(full_rune(b"\xff"));
    }

    #[test]
    fn errno_texts_as_go() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(go_errno_text(&e), "no such file or directory");
    }
}
