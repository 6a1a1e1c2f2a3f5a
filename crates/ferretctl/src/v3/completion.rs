//! `completion bash|zsh|fish|powershell`: the scripts cobra 1.6.1
//! (Debian's etcdctl is built with it) writes, for the root command's
//! name (`etcdctl`, as etcdctl prints it: ferretctl stands in for it).
//! The templates are cobra's own (`bash_completionsV2.go`,
//! `zsh_completions.go`, Apache-2.0), kept as the Go format strings they
//! are in `completion/*.tmpl` and filled in as Go's `fmt.Sprintf` does.
//!
//! `completion fish` and `completion powershell` likewise print cobra's
//! `fish_completions.go` and `powershell_completions.go` templates
//! (Apache-2.0; fish's header line is a `Sprintf` of its own).
//!
//! The scripts complete by running `etcdctl __complete <words>` (or
//! `__completeNoDesc` with `--no-descriptions`), cobra's hidden command,
//! which ferretctl answers in `super::complete`.

use std::io::Write;

use super::cli::{exit, Exit, Invocation};

const BASH: &str = include_str!("completion/bash.tmpl");
const ZSH: &str = include_str!("completion/zsh.tmpl");
const FISH: &str = include_str!("completion/fish.tmpl");
const POWERSHELL: &str = include_str!("completion/powershell.tmpl");

/// The root command's name in the scripts.
const NAME: &str = "etcdctl";

/// cobra's `ShellCompDirective` bits, in its template's argument order
/// (3 to 7): Error, NoSpace, NoFileComp, FilterFileExt, FilterDirs.
const DIRECTIVES: [u32; 5] = [1, 2, 4, 8, 16];

/// cobra's `activeHelpEnvVar(NAME)`: the name upper-cased, `-` as `_`.
const ACTIVE_HELP_ENV: &str = "ETCDCTL_ACTIVE_HELP";

/// cobra's `activeHelpMarker`.
const ACTIVE_HELP_MARKER: &str = "_activeHelp_ ";

/// An argument of [`sprintf`].
enum Arg<'a> {
    S(&'a str),
    D(u32),
}

/// The subset of Go's `fmt.Sprintf` cobra's templates use: `%%`,
/// `%[n]s`, `%[n]d` and `%-W[n]s` (left-aligned, padded to W). Anything
/// else is an error, never guessed at.
fn sprintf(format: &str, args: &[Arg]) -> Result<String, String> {
    let mut out = String::with_capacity(format.len() + 256);
    let mut rest = format;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('%') {
            out.push('%');
            rest = r;
            continue;
        }
        let (left, r) = match rest.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let digits = r.len() - r.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let width: usize = if digits > 0 {
            r[..digits].parse().map_err(|_| "bad width".to_string())?
        } else {
            0
        };
        let r = &r[digits..];
        let Some(r) = r.strip_prefix('[') else {
            return Err(format!(
                "unsupported verb at {:?}",
                &rest[..rest.len().min(10)]
            ));
        };
        let close = r.find(']').ok_or("unclosed argument index")?;
        let n: usize = r[..close]
            .parse()
            .map_err(|_| "bad argument index".to_string())?;
        let r = &r[close + 1..];
        let verb = r.chars().next().ok_or("missing verb")?;
        let arg = args
            .get(n.wrapping_sub(1))
            .ok_or_else(|| format!("no argument {n}"))?;
        let text = match (verb, arg) {
            ('s', Arg::S(s)) => s.to_string(),
            ('d', Arg::D(d)) => d.to_string(),
            _ => return Err(format!("verb %{verb} does not fit argument {n}")),
        };
        let pad = width.saturating_sub(text.chars().count());
        if !left {
            out.push_str(&" ".repeat(pad));
        }
        out.push_str(&text);
        if left {
            out.push_str(&" ".repeat(pad));
        }
        rest = &r[verb.len_utf8()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Which of cobra's four generators a template belongs to: they pass
/// their `Sprintf` different arguments.
#[derive(Clone, Copy)]
enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

/// The script of `shell` for `NAME`, with or without descriptions.
fn script(shell: Shell, descriptions: bool) -> Result<String, String> {
    let comp_cmd = if descriptions {
        "__complete"
    } else {
        "__completeNoDesc"
    };
    // NAME has no `-` or `:`, so cobra's `nameForVar` is NAME itself.
    let name_for_var = NAME;
    let [e, ns, nf, fe, fd] = DIRECTIVES;
    let directives = [Arg::D(e), Arg::D(ns), Arg::D(nf), Arg::D(fe), Arg::D(fd)];
    let (template, first, second, last) = match shell {
        Shell::Bash => (BASH, NAME, comp_cmd, ACTIVE_HELP_MARKER),
        Shell::Zsh => (ZSH, NAME, comp_cmd, ACTIVE_HELP_MARKER),
        Shell::Fish => (FISH, name_for_var, NAME, ACTIVE_HELP_ENV),
        Shell::Powershell => (POWERSHELL, NAME, name_for_var, ACTIVE_HELP_ENV),
    };
    let mut args = vec![Arg::S(first), Arg::S(second)];
    if matches!(shell, Shell::Fish | Shell::Powershell) {
        args.push(Arg::S(comp_cmd));
    }
    args.extend(directives);
    args.push(Arg::S(last));
    let body = sprintf(template, &args)?;
    Ok(match shell {
        // fish's header is a `Sprintf` of its own, with a plain `%-36s`.
        Shell::Fish => format!("# fish completion for {NAME:<36} -*- shell-script -*-\n{body}"),
        _ => body,
    })
}

fn print(shell: Shell, inv: &Invocation) -> Result<(), Exit> {
    let text = script(shell, !inv.bool("no-descriptions"))
        .map_err(|e| Exit::new(exit::ERROR, format!("completion template: {e}")))?;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
    Ok(())
}

pub fn bash(inv: &Invocation) -> Result<(), Exit> {
    print(Shell::Bash, inv)
}

pub fn zsh(inv: &Invocation) -> Result<(), Exit> {
    print(Shell::Zsh, inv)
}

pub fn fish(inv: &Invocation) -> Result<(), Exit> {
    print(Shell::Fish, inv)
}

pub fn powershell(inv: &Invocation) -> Result<(), Exit> {
    print(Shell::Powershell, inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_sprintf_subset() {
        let a = [Arg::S("ab"), Arg::D(7)];
        assert_eq!(sprintf("x%[1]s%%y%[2]d", &a).unwrap(), "xab%y7");
        assert_eq!(sprintf("[%-5[1]s]", &a).unwrap(), "[ab   ]");
        assert!(sprintf("%s", &a).is_err());
        assert!(sprintf("%[3]s", &a).is_err());
        assert!(sprintf("%[2]s", &a).is_err());
    }

    #[test]
    fn templates_fill_in() {
        for t in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Powershell] {
            for d in [true, false] {
                let s = script(t, d).unwrap();
                assert!(s.contains("__etcdctl_debug"));
                assert!(!s.contains("%["));
            }
        }
    }
}
