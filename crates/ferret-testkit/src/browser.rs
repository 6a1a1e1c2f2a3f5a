//! A headless Chromium driven over WebDriver, for the dashboard's browser
//! tests (`crates/ferretcd/tests/ui.rs`).
//!
//! [`Browser::start`] runs `chromedriver` on a free loopback port and opens
//! one headless Chromium session through it (the `fantoccini` client, on a
//! runtime of its own so that tests stay synchronous). The helpers go to a
//! page, wait (polling, with a deadline) for an element, a text or an
//! attribute, click, type, read, and save screenshots as
//! `target/ui-screenshots/<test>-<step>.png`. A wait that runs out panics
//! with what it waited for, the last thing it saw, and the page's text, and
//! saves a `<test>-failed.png` beside the others.
//!
//! Dropping the browser ends the session (chromedriver quits Chromium),
//! then kills chromedriver's process group and any Chromium process left
//! with this session's profile directory, so nothing outlives the test.
//!
//! [`available`] says whether Chromium and chromedriver are installed; a
//! test skips itself loudly when they are not, except under CI (`CI` set),
//! where that fails it (`.ci/run` installs Debian's `chromium` and
//! `chromium-driver`).

use std::fs;
use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::dir::TempDir;
use crate::ports::free_ports;
use crate::process::Proc;

/// How long a wait helper polls unless told otherwise ([`Browser::set_timeout`]).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// The browser window's size, in CSS pixels (screenshots have this size).
pub const WINDOW: (u32, u32) = (1400, 1000);

/// How often waits poll the page.
const POLL: Duration = Duration::from_millis(50);

/// The longest one WebDriver command may take before the test fails (a
/// page load included), so that nothing hangs.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

/// Where a program is: `$<env>` if set, else `name` on the PATH, else
/// `/usr/bin/<name>`.
fn find(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let c = d.join(name);
            if c.is_file() {
                return Some(c);
            }
        }
    }
    let p = Path::new("/usr/bin").join(name);
    p.is_file().then_some(p)
}

/// Chromium and chromedriver (`$FERRET_CHROMIUM`, `$FERRET_CHROMEDRIVER`
/// override where they are looked for).
pub fn tools() -> Option<(PathBuf, PathBuf)> {
    Some((
        find("FERRET_CHROMIUM", "chromium")?,
        find("FERRET_CHROMEDRIVER", "chromedriver")?,
    ))
}

/// Whether Chromium and chromedriver are installed. When they are not,
/// prints a `SKIPPED` line (the caller returns), or fails under CI, where
/// `.ci/run` installs them.
pub fn available() -> bool {
    if tools().is_some() {
        return true;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a browser test")
        .to_string();
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: chromium and chromedriver are missing, and CI needs them \
         (apt-get install chromium chromium-driver)"
    );
    eprintln!(
        "SKIPPED {test}: no chromium/chromedriver (apt-get install chromium chromium-driver)"
    );
    false
}

/// The target directory of the running test (`<target>/<profile>/deps/<test>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let mut dir = exe.parent().expect("a directory").to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    // <target>/<profile>
    dir.pop();
    dir
}

/// Where screenshots go: `<target>/ui-screenshots` (CI keeps it).
pub fn screenshot_dir() -> PathBuf {
    target_dir().join("ui-screenshots")
}

/// A file name part made of letters, digits, `-` and `_` only.
fn file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// At most `n` characters of `s`, with a note when cut.
fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((at, _)) => format!("{}... ({} more bytes)", &s[..at], s.len() - at),
        None => s.to_string(),
    }
}

/// A value of a script as text, as tests compare it (`null` as `None`).
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Collapses runs of white space and trims, as a reader sees the text.
pub fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One Chromium session and the chromedriver that runs it.
pub struct Browser {
    test: String,
    client: Option<Client>,
    rt: tokio::runtime::Runtime,
    driver: Proc,
    timeout: Duration,
    profile: PathBuf,
    // Declared last: removed after the processes are gone.
    dir: TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; `test` names
    /// the screenshots (`<test>-<step>.png`). Check [`available`] first.
    pub fn start(test: &str) -> Browser {
        Browser::start_with(test, false)
    }

    /// As [`Browser::start`], for pages over https with certificates no
    /// CA of the browser's vouches for (`--auto-tls`, a test CA): WebDriver's
    /// `acceptInsecureCerts`, so a self-signed certificate is taken as a
    /// user clicking through the warning would. The page is still TLS.
    pub fn start_accepting_any_certificate(test: &str) -> Browser {
        Browser::start_with(test, true)
    }

    fn start_with(test: &str, accept_insecure_certs: bool) -> Browser {
        let (chromium, chromedriver) =
            tools().expect("chromium and chromedriver (check browser::available() first)");
        let dir = TempDir::new("ferret-browser");
        let profile = dir.0.join("profile");
        fs::create_dir_all(&profile).expect("create the profile dir");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let mut b = Browser {
            test: file_part(test),
            client: None,
            rt,
            driver: Proc(None),
            timeout: DEFAULT_WAIT,
            profile,
            dir,
        };
        let addr = b.start_driver(&chromedriver);
        let mut opts = vec![
            "--headless=new".to_string(),
            // CI runs as root, where Chromium's sandbox refuses to start.
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            // Containers have a small /dev/shm.
            "--disable-dev-shm-usage".into(),
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            format!("--user-data-dir={}", b.profile.display()),
            // Loopback only: no updates, sync, translation or other calls home.
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--disable-default-apps".into(),
            "--disable-features=Translate,OptimizationHints,MediaRouter".into(),
            "--password-store=basic".into(),
            "--lang=en-US".into(),
        ];
        if let Ok(more) = std::env::var("FERRET_CHROMIUM_ARGS") {
            opts.extend(more.split_whitespace().map(str::to_string));
        }
        let caps = json!({
            "browserName": "chrome",
            // A confirm() before a delete, say, is accepted as a user would.
            "unhandledPromptBehavior": "accept",
            "acceptInsecureCerts": accept_insecure_certs,
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": opts,
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let url = format!("http://{addr}");
        let connected = b.rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(60),
                ClientBuilder::new(HttpConnector::new())
                    .capabilities(caps)
                    .connect(&url),
            )
            .await
        });
        match connected {
            Ok(Ok(client)) => b.client = Some(client),
            Ok(Err(e)) => panic!(
                "no Chromium session through chromedriver at {url}: {e}\n{}",
                b.driver_log()
            ),
            Err(_) => panic!(
                "no Chromium session through chromedriver at {url} within 60 s\n{}",
                b.driver_log()
            ),
        }
        b
    }

    /// Runs chromedriver on a free port (again on another one if it could
    /// not listen), in a process group of its own; its listening address.
    fn start_driver(&mut self, chromedriver: &Path) -> SocketAddr {
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_ports(1)[0];
            let log = self.dir.0.join("chromedriver.log");
            let out = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .expect("open chromedriver.log");
            let child = Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("clone log handle"))
                .stderr(out)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", chromedriver.display()));
            self.driver = Proc(Some(child));
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(st) = self.driver.exited() {
                    last = format!("chromedriver exited ({st})\n{}", self.driver_log());
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return addr;
                }
                if Instant::now() > deadline {
                    self.driver.kill();
                    panic!(
                        "chromedriver does not listen on {addr} after 20 s\n{}",
                        self.driver_log()
                    );
                }
                sleep(Duration::from_millis(20));
            }
        }
        panic!("chromedriver did not start: {last}");
    }

    /// The last lines of chromedriver's output.
    fn driver_log(&self) -> String {
        let text = fs::read_to_string(self.dir.0.join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "--- chromedriver output, last lines ---\n{}",
            lines[lines.len().saturating_sub(30)..].join("\n")
        )
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a session")
    }

    /// Runs one WebDriver command to its end, or fails after COMMAND_LIMIT.
    fn run<T, E: std::fmt::Display>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, String> {
        match self
            .rt
            .block_on(async { tokio::time::timeout(COMMAND_LIMIT, fut).await })
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(format!("{what}: {e}")),
            Err(_) => Err(format!("{what}: no answer within {COMMAND_LIMIT:?}")),
        }
    }

    /// The test's name, as screenshots are named.
    pub fn test(&self) -> &str {
        &self.test
    }

    /// How long the `wait_*` helpers, `click` and `type_into` wait.
    pub fn set_timeout(&mut self, limit: Duration) {
        self.timeout = limit;
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Loads `url` (returns once the page has loaded).
    pub fn goto(&self, url: &str) {
        if let Err(e) = self.run(&format!("go to {url}"), self.client().goto(url)) {
            self.fail(&e);
        }
    }

    /// The URL of the current page.
    pub fn url(&self) -> String {
        self.run("current URL", self.client().current_url())
            .map(|u| u.to_string())
            .unwrap_or_else(|e| e)
    }

    /// Runs `script` (a function body: `return ...`, the arguments in
    /// `arguments`) in the page; its value, or the error.
    pub fn try_eval(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.run("script", self.client().execute(script, args))
    }

    /// [`Browser::try_eval`], failing the test on an error.
    pub fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        self.try_eval(script, args)
            .unwrap_or_else(|e| self.fail(&format!("{e}\nscript: {script}")))
    }

    /// What the page shows as text (`document.body.innerText`).
    pub fn page_text(&self) -> String {
        self.try_eval(
            "return document.body ? document.body.innerText : document.documentElement.outerHTML;",
            vec![],
        )
        .map(|v| as_text(&v).unwrap_or_default())
        .unwrap_or_else(|e| format!("(no page text: {e})"))
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> usize {
        self.try_count(css).unwrap_or_else(|e| self.fail(&e))
    }

    fn try_count(&self, css: &str) -> Result<usize, String> {
        let v = self.try_eval(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(css)],
        )?;
        v.as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| format!("count of {css}: {v}"))
    }

    /// Whether an element matches `css`.
    pub fn exists(&self, css: &str) -> bool {
        self.count(css) > 0
    }

    /// The text of the first element matching `css` (its `innerText`,
    /// trimmed), `None` when there is none.
    pub fn text(&self, css: &str) -> Option<String> {
        self.try_text(css).unwrap_or_else(|e| self.fail(&e))
    }

    fn try_text(&self, css: &str) -> Result<Option<String>, String> {
        let v = self.try_eval(
            "const e = document.querySelector(arguments[0]); \
             return e ? e.innerText.trim() : null;",
            vec![json!(css)],
        )?;
        Ok(as_text(&v))
    }

    /// The texts of every element matching `css`, in document order.
    pub fn texts(&self, css: &str) -> Vec<String> {
        self.try_texts(css).unwrap_or_else(|e| self.fail(&e))
    }

    fn try_texts(&self, css: &str) -> Result<Vec<String>, String> {
        let v = self.try_eval(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.innerText.trim());",
            vec![json!(css)],
        )?;
        Ok(v.as_array()
            .map(|a| a.iter().filter_map(as_text).collect())
            .unwrap_or_default())
    }

    /// An attribute of the first element matching `css` (`None`: no such
    /// element or attribute).
    pub fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.try_attr(css, name).unwrap_or_else(|e| self.fail(&e))
    }

    fn try_attr(&self, css: &str, name: &str) -> Result<Option<String>, String> {
        let v = self.try_eval(
            "const e = document.querySelector(arguments[0]); \
             return e ? e.getAttribute(arguments[1]) : null;",
            vec![json!(css), json!(name)],
        )?;
        Ok(as_text(&v))
    }

    /// An attribute of every element matching `css` (`None` where absent).
    pub fn attrs(&self, css: &str, name: &str) -> Vec<Option<String>> {
        let v = self.eval(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.getAttribute(arguments[1]));",
            vec![json!(css), json!(name)],
        );
        v.as_array()
            .map(|a| a.iter().map(as_text).collect())
            .unwrap_or_default()
    }

    /// The current value of the input or textarea matching `css`.
    pub fn value(&self, css: &str) -> Option<String> {
        let v = self.eval(
            "const e = document.querySelector(arguments[0]); return e ? e.value : null;",
            vec![json!(css)],
        );
        as_text(&v)
    }

    /// Whether an element matching `css` exists and is rendered (not
    /// `hidden`, `display: none` or `visibility: hidden`).
    pub fn visible(&self, css: &str) -> bool {
        self.try_visible(css).unwrap_or_else(|e| self.fail(&e))
    }

    fn try_visible(&self, css: &str) -> Result<bool, String> {
        let v = self.try_eval(
            "const e = document.querySelector(arguments[0]); \
             if (!e) return false; \
             if (e.closest('[hidden]')) return false; \
             const s = getComputedStyle(e); \
             return s.visibility !== 'hidden' && e.getClientRects().length > 0;",
            vec![json!(css)],
        )?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// Polls `check` every 50 ms until it answers `Ok`, and returns that;
    /// after `limit`, fails the test with `what`, the last `Err` and the
    /// page's text (and a `failed` screenshot).
    pub fn wait_until<T>(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut(&Browser) -> Result<T, String>,
    ) -> T {
        let start = Instant::now();
        loop {
            let last = match check(self) {
                Ok(v) => return v,
                Err(e) => e,
            };
            if start.elapsed() > limit {
                self.fail(&format!(
                    "waited {:.1?} for {what}; last seen: {last}",
                    start.elapsed()
                ));
            }
            sleep(POLL);
        }
    }

    /// Waits until an element matches `css`.
    pub fn wait_exists(&self, css: &str) {
        self.wait_until(&format!("an element {css}"), self.timeout, |b| {
            match b.try_count(css)? {
                0 => Err("none".into()),
                _ => Ok(()),
            }
        })
    }

    /// Waits until `css` matches nothing.
    pub fn wait_gone(&self, css: &str) {
        self.wait_until(&format!("no element {css}"), self.timeout, |b| {
            match b.try_count(css)? {
                0 => Ok(()),
                n => Err(format!("{n} of them")),
            }
        })
    }

    /// Waits until the first element matching `css` is rendered.
    pub fn wait_visible(&self, css: &str) {
        self.wait_until(&format!("{css} to be visible"), self.timeout, |b| {
            if b.try_visible(css)? {
                Ok(())
            } else if b.try_count(css)? == 0 {
                Err("no such element".into())
            } else {
                Err("present, not rendered".into())
            }
        })
    }

    /// Waits until an element matching `css` exists but is not rendered,
    /// or none does.
    pub fn wait_hidden(&self, css: &str) {
        self.wait_until(&format!("{css} to be hidden"), self.timeout, |b| {
            if b.try_visible(css)? {
                Err("visible".into())
            } else {
                Ok(())
            }
        })
    }

    /// Waits until the first element matching `css` has the text `want`
    /// (white space collapsed on both sides); returns it.
    pub fn wait_text(&self, css: &str, want: &str) -> String {
        let want = squash(want);
        self.wait_until(
            &format!("{css} to read {want:?}"),
            self.timeout,
            |b| match b.try_text(css)? {
                Some(t) if squash(&t) == want => Ok(t),
                Some(t) => Err(format!("{t:?}")),
                None => Err("no such element".into()),
            },
        )
    }

    /// Waits until the first element matching `css` has a text containing
    /// `part`; returns the whole text.
    pub fn wait_text_contains(&self, css: &str, part: &str) -> String {
        self.wait_until(
            &format!("{css} to contain {part:?}"),
            self.timeout,
            |b| match b.try_text(css)? {
                Some(t) if t.contains(part) => Ok(t),
                Some(t) => Err(format!("{t:?}")),
                None => Err("no such element".into()),
            },
        )
    }

    /// Waits until the first element matching `css` has the attribute
    /// `name` equal to `want`.
    pub fn wait_attr(&self, css: &str, name: &str, want: &str) {
        self.wait_until(
            &format!("{css} to have {name}={want:?}"),
            self.timeout,
            |b| match b.try_attr(css, name)? {
                Some(v) if v == want => Ok(()),
                Some(v) => Err(format!("{name}={v:?}")),
                None if b.try_count(css)? == 0 => Err("no such element".into()),
                None => Err(format!("no attribute {name}")),
            },
        )
    }

    /// Waits until the input or textarea matching `css` holds `want`.
    pub fn wait_value(&self, css: &str, want: &str) {
        self.wait_until(&format!("{css} to hold {want:?}"), self.timeout, |b| {
            let v = b.try_eval(
                "const e = document.querySelector(arguments[0]); return e ? e.value : null;",
                vec![json!(css)],
            )?;
            match as_text(&v) {
                Some(v) if v == want => Ok(()),
                Some(v) => Err(format!("{v:?}")),
                None => Err("no such element".into()),
            }
        })
    }

    /// Waits until exactly `n` elements match `css`.
    pub fn wait_count(&self, css: &str, n: usize) {
        self.wait_until(&format!("{n} elements {css}"), self.timeout, |b| {
            match b.try_count(css)? {
                m if m == n => Ok(()),
                m => Err(format!("{m} of them")),
            }
        })
    }

    /// Waits for the first element matching `css` to be visible, then clicks
    /// it (again while it is being re-rendered or covered, until the
    /// deadline).
    pub fn click(&self, css: &str) {
        self.wait_until(&format!("a click on {css}"), self.timeout, |b| {
            if !b.try_visible(css)? {
                return Err("not visible (or absent)".into());
            }
            let c = b.client();
            b.run(&format!("click {css}"), async {
                c.find(Locator::Css(css)).await?.click().await
            })
        })
    }

    /// Waits for the input or textarea matching `css` to be visible,
    /// empties it and types `text` into it (key by key, as a user would).
    pub fn type_into(&self, css: &str, text: &str) {
        self.wait_until(&format!("typing into {css}"), self.timeout, |b| {
            if !b.try_visible(css)? {
                return Err("not visible (or absent)".into());
            }
            let c = b.client();
            b.run(&format!("type into {css}"), async {
                let e = c.find(Locator::Css(css)).await?;
                e.clear().await?;
                e.send_keys(text).await
            })
        })
    }

    /// Saves a PNG of the window as `<target>/ui-screenshots/<test>-<step>.png`;
    /// its path.
    pub fn screenshot(&self, step: &str) -> PathBuf {
        self.try_screenshot(step).unwrap_or_else(|e| self.fail(&e))
    }

    fn try_screenshot(&self, step: &str) -> Result<PathBuf, String> {
        let png = self.run("screenshot", self.client().screenshot())?;
        let dir = screenshot_dir();
        fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let path = dir.join(format!("{}-{}.png", self.test, file_part(step)));
        fs::write(&path, png).map_err(|e| format!("write {}: {e}", path.display()))?;
        Ok(path)
    }

    /// Fails the test with `why`, the page's address and text, after
    /// saving a `failed` screenshot.
    pub fn fail(&self, why: &str) -> ! {
        let shot = match self.try_screenshot("failed") {
            Ok(p) => format!("screenshot: {}", p.display()),
            Err(e) => format!("no screenshot: {e}"),
        };
        panic!(
            "{why}\n--- page {} ({shot}) ---\n{}\n---",
            self.url(),
            clip(&self.page_text(), 4000)
        );
    }

    /// Chromium's processes for this session: those whose command line
    /// names its profile directory (chromedriver starts Chromium; its pid
    /// is not told).
    fn chromium_pids(&self) -> Vec<i32> {
        let needle = format!("--user-data-dir={}", self.profile.display());
        let Ok(dir) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.split(|&b| b == 0).any(|arg| arg == needle.as_bytes()))
            })
            .collect()
    }

    /// Whether any process of this session is still running (chromedriver
    /// or one of Chromium's).
    pub fn processes(&self) -> Vec<i32> {
        let mut p = self.chromium_pids();
        if let Some(pid) = self.driver.pid() {
            p.push(pid as i32);
        }
        p
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session makes chromedriver quit Chromium.
        if let Some(c) = self.client.take() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(10), c.close()).await });
        }
        if let Some(pid) = self.driver.pid() {
            // SAFETY: kill(2) on the process group of our own child (it was
            // started as the leader of a group of its own).
            unsafe {
                libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
            }
        }
        self.driver.kill();
        // A Chromium left behind (the session did not end, and it is in a
        // group of its own): its processes carry this session's profile.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = self.chromium_pids();
            if left.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in left {
                // SAFETY: plain kill(2) on a Chromium process of this
                // session (its command line names our own profile dir).
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            sleep(Duration::from_millis(50));
        }
        if std::thread::panicking() {
            eprintln!("{}", self.driver_log());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    const PAGE: &str = r#"<!doctype html>
<html><head><title>harness</title></head><body>
<h1 id="title">Harness page</h1>
<input id="name" value="old">
<button id="go">Go</button>
<p id="out" data-state="idle"></p>
<ul id="list"></ul>
<form id="login" hidden><input id="user"></form>
<script>
document.getElementById('go').addEventListener('click', () => {
  if (!confirm('sure?')) return;
  const name = document.getElementById('name').value;
  setTimeout(() => {
    const out = document.getElementById('out');
    out.textContent = 'hello ' + name;
    out.dataset.state = 'done';
    for (const k of ['a', 'b', 'c']) {
      const li = document.createElement('li');
      li.dataset.key = k;
      li.textContent = 'key ' + k;
      document.getElementById('list').appendChild(li);
    }
    document.getElementById('login').hidden = false;
  }, 300);
});
</script>
</body></html>"#;

    /// Serves PAGE at `/` (and a 404 elsewhere) from a thread; its address.
    fn serve() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&req);
                let (status, body) = if line.starts_with("GET / ") {
                    ("200 OK", PAGE)
                } else {
                    ("404 Not Found", "404 page not found\n")
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        addr
    }

    #[test]
    fn drives_a_page_and_stops_everything_it_started() {
        if !available() {
            return;
        }
        let addr = serve();
        let mut b = Browser::start("harness");
        b.goto(&format!("http://{addr}/"));
        b.wait_text("#title", "Harness page");
        assert_eq!(b.value("#name").as_deref(), Some("old"));
        assert!(!b.visible("#login"));
        b.type_into("#name", "ferret");
        b.wait_value("#name", "ferret");
        // The page asks confirm() first: accepted.
        b.click("#go");
        b.wait_text("#out", "hello ferret");
        b.wait_attr("#out", "data-state", "done");
        b.wait_count("#list li", 3);
        assert_eq!(b.texts("#list li"), ["key a", "key b", "key c"]);
        assert_eq!(
            b.attrs("#list li", "data-key"),
            [Some("a".into()), Some("b".into()), Some("c".into())]
        );
        b.wait_visible("#login");
        let shot = b.screenshot("done");
        let png = fs::read(&shot).expect("the screenshot");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        assert!(
            shot.ends_with("ui-screenshots/harness-done.png"),
            "{shot:?}"
        );

        // A wait that runs out says what it waited for and what the page shows.
        b.set_timeout(Duration::from_millis(300));
        let start = Instant::now();
        let err = catch_unwind(AssertUnwindSafe(|| b.wait_text("#out", "never")))
            .expect_err("the wait fails");
        assert!(start.elapsed() < Duration::from_secs(5));
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("#out to read \"never\""), "{msg}");
        assert!(msg.contains("last seen: \"hello ferret\""), "{msg}");
        assert!(msg.contains("Harness page"), "{msg}");
        let failed = screenshot_dir().join("harness-failed.png");
        assert!(failed.is_file(), "a failed wait saves a screenshot");
        let _ = fs::remove_file(failed);

        // A page that is not there: a 404 text, found at once.
        b.goto(&format!("http://{addr}/ui/"));
        assert!(b.page_text().contains("404 page not found"));

        let procs = b.processes();
        assert!(procs.len() >= 2, "chromedriver and Chromium: {procs:?}");
        drop(b);
        for pid in procs {
            // SAFETY: signal 0 only asks whether the process exists.
            let alive = unsafe { libc::kill(pid, 0) } == 0;
            let zombie = fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true);
            assert!(!alive || zombie, "process {pid} outlived the browser");
        }
    }
}
