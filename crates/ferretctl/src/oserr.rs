//! Go's texts for operating-system errors, as its `os` and `net` packages
//! print them: `syscall.Errno`'s lower-case strerror text, and
//! `*os.PathError`'s `<op> <path>: <errno>`.

/// Go's lower-case text for an errno ("connection refused").
pub fn errno_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            // SAFETY: strerror returns a pointer to a static, NUL-terminated string.
            let text = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) }
                .to_string_lossy()
                .into_owned();
            let mut chars = text.chars();
            match chars.next() {
                Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
                None => text,
            }
        }
        None => e.to_string(),
    }
}

/// Go's `ioutil.ReadFile`: the file's bytes, or its `*os.PathError` text
/// (`open x.pem: no such file or directory`, `read d: is a directory`).
pub fn read_file(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).map_err(|e| format!("open {path}: {}", errno_text(&e)))?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)
        .map_err(|e| format!("read {path}: {}", errno_text(&e)))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_errors_read_as_gos() {
        assert_eq!(
            read_file("/nonexistent/x.pem").unwrap_err(),
            "open /nonexistent/x.pem: no such file or directory"
        );
        assert_eq!(read_file("/").unwrap_err(), "read /: is a directory");
    }
}
