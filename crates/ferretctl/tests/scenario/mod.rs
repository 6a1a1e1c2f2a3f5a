//! Scenarios of command lines run by one tool against one server, and
//! their normalised results, for the differential tests.
#![allow(dead_code)]

use std::fs;
use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::{
    current_index, member_id, show_diff, Normaliser, Proc, Run, Server, TempDir, Tool,
};

/// One step of a scenario. Command lines are split as a shell would
/// (single and double quotes) after these placeholders are filled in:
/// `{after}` the server's current index, `{id}` its member id, `{peer}`
/// its peer URL, `{dead}` a closed loopback port, `{p}` the key prefix of
/// this run.
#[derive(Clone, Debug)]
pub enum Step {
    Run {
        line: &'static str,
        stdin: Option<&'static str>,
    },
    /// A watch or exec-watch in the background while `writes` run (with
    /// the same tool); with `interrupt`, stopped by SIGINT once its stdout
    /// has `lines` lines; otherwise it must end by itself. `sort` sorts
    /// the output lines (exec-watch runs its commands concurrently).
    Watch {
        line: &'static str,
        writes: &'static [&'static str],
        lines: usize,
        interrupt: bool,
        sort: bool,
    },
}

pub fn run(line: &'static str) -> Step {
    Step::Run { line, stdin: None }
}

pub fn run_in(line: &'static str, stdin: &'static str) -> Step {
    Step::Run {
        line,
        stdin: Some(stdin),
    }
}

/// A shell-like split: whitespace separates words, quotes group them.
pub fn split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for d in chars.by_ref() {
                    if d == '\'' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '"' => {
                in_word = true;
                while let Some(d) = chars.next() {
                    match d {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                cur.push(e);
                            }
                        }
                        d => cur.push(d),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// One (tool, server) side of a comparison.
pub struct Side<'a> {
    pub tool: Tool,
    pub server: &'a Server,
    pub prefix: &'static str,
    pub dead_port: u16,
}

impl Side<'_> {
    pub fn label(&self) -> String {
        format!("{} on {}", self.tool.label, self.server.label)
    }

    fn fill(&self, line: &str) -> Vec<String> {
        let line = line
            .replace("{p}", self.prefix)
            .replace("{dead}", &self.dead_port.to_string())
            .replace("{peer}", &self.server.peer_url);
        let line = if line.contains("{id}") {
            line.replace("{id}", &member_id(&self.server.client_url))
        } else {
            line
        };
        let line = if line.contains("{after}") {
            line.replace(
                "{after}",
                &current_index(&self.server.client_url).to_string(),
            )
        } else {
            line
        };
        split(&line)
    }

    /// Runs the steps; returns each step's result, normalised.
    pub fn play(&self, steps: &[Step]) -> Vec<Run> {
        let ep = self.server.client_url.clone();
        let norm = Normaliser {
            base: current_index(&ep) + 1,
            literal: vec![
                (self.server.client_url.clone(), "<client>".into()),
                (self.server.peer_url.clone(), "<peer>".into()),
                (format!("{}/", self.prefix), "{p}/".into()),
                ("3.4.23".into(), "<version>".into()),
                (env!("CARGO_PKG_VERSION").into(), "<version>".into()),
            ],
        };
        let mut out = Vec::new();
        for step in steps {
            let r = match step {
                Step::Run { line, stdin } => self.tool.run(&ep, &self.fill(line), *stdin),
                Step::Watch {
                    line,
                    writes,
                    lines,
                    interrupt,
                    sort,
                } => self.watch(line, writes, *lines, *interrupt, *sort),
            };
            out.push(Run {
                stdout: norm.apply(&r.stdout),
                stderr: norm.apply(&r.stderr),
                code: r.code,
            });
        }
        out
    }

    fn watch(&self, line: &str, writes: &[&str], lines: usize, interrupt: bool, sort: bool) -> Run {
        let ep = &self.server.client_url;
        let dir = TempDir::new("ferretctl-watch");
        let (out_path, err_path) = (dir.0.join("out"), dir.0.join("err"));
        let args = self.fill(line);
        let before = self.server.watchers();
        let mut cmd = self.tool.command(ep, &args);
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(&out_path).unwrap())
            .stderr(fs::File::create(&err_path).unwrap());
        let mut p = Proc(Some(cmd.spawn().unwrap()));
        // Writes only once the watch is registered, with or without
        // --after-index: a response's X-Etcd-Index (extended output's
        // "Index:") is the store index when the watch began.
        self.server.wait_watchers_above(before);
        for w in writes {
            let r = self.tool.run(ep, &self.fill(w), None);
            assert_eq!(r.code, 0, "{}: write {w:?} failed: {r:?}", self.label());
        }
        let run = if interrupt {
            let deadline = Instant::now() + Duration::from_secs(10);
            while fs::read_to_string(&out_path)
                .unwrap_or_default()
                .lines()
                .count()
                < lines
                && Instant::now() < deadline
            {
                sleep(Duration::from_millis(20));
            }
            // A moment for anything beyond the expected lines to show.
            sleep(Duration::from_millis(150));
            let o = p.interrupt();
            o.status.code().unwrap_or(-1)
        } else {
            let o = p.wait_output(Duration::from_secs(10));
            o.map(|o| o.status.code().unwrap_or(-1)).unwrap_or(-2)
        };
        let mut stdout = fs::read_to_string(&out_path).unwrap_or_default();
        let mut stderr = fs::read_to_string(&err_path).unwrap_or_default();
        if sort {
            for s in [&mut stdout, &mut stderr] {
                let mut l: Vec<&str> = s.lines().collect();
                l.sort();
                *s = l.iter().map(|x| format!("{x}\n")).collect();
            }
        }
        Run {
            stdout,
            stderr,
            code: run,
        }
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::Run { line, stdin } => match stdin {
            Some(s) => format!("{line}   (stdin {s:?})"),
            None => line.to_string(),
        },
        Step::Watch { line, writes, .. } => format!("{line}   (while: {})", writes.join("; ")),
    }
}

/// Compares two sides' results step by step; returns a report of every
/// step that differs (empty when they agree).
pub fn compare(steps: &[Step], a_label: &str, a: &[Run], b_label: &str, b: &[Run]) -> String {
    let mut report = String::new();
    for (i, step) in steps.iter().enumerate() {
        let (x, y) = (&a[i], &b[i]);
        if x == y {
            continue;
        }
        report.push_str(&format!("\n#{i} {}\n", describe(step)));
        if x.code != y.code {
            report.push_str(&format!(
                "  exit code: {a_label} {} / {b_label} {}\n",
                x.code, y.code
            ));
        }
        if x.stdout != y.stdout {
            report.push_str(&format!(
                "  stdout:\n{}",
                show_diff(a_label, &x.stdout, b_label, &y.stdout)
            ));
        }
        if x.stderr != y.stderr {
            report.push_str(&format!(
                "  stderr:\n{}",
                show_diff(a_label, &x.stderr, b_label, &y.stderr)
            ));
        }
    }
    report
}

#[test]
fn split_like_a_shell() {
    assert_eq!(
        split(r#"set '/a b' "x \"y\"" -- -z"#),
        vec!["set", "/a b", "x \"y\"", "--", "-z"]
    );
    assert_eq!(split("set /k ''"), vec!["set", "/k", ""]);
}
