//! Go's `fmt`, where etcd formats a text that has no arguments.

/// Go's `fmt.Sprintf(s)` with no arguments: `%%` is `%`, any other verb
/// becomes `%!v(MISSING)` (and Go's other complaints: `%!(NOVERB)`,
/// `%!(BADWIDTH)`, `%!v(BADINDEX)`). etcd passes two of its auth messages
/// through this.
pub fn sprintf_no_args(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        while chars.next_if(|c| "+-# 0".contains(*c)).is_some() {}
        let mut bad_index = false;
        if chars.peek() == Some(&'[') {
            // An argument index: with no arguments every index is bad.
            let rest: String = chars.clone().collect();
            if let Some(end) = rest.find(']') {
                for _ in 0..=rest[..end].chars().count() {
                    chars.next();
                }
                bad_index = true;
            }
        }
        if chars.next_if_eq(&'*').is_some() {
            out.push_str("%!(BADWIDTH)");
        } else {
            while chars.next_if(|c| c.is_ascii_digit()).is_some() {}
        }
        if chars.next_if_eq(&'.').is_some() {
            if chars.next_if_eq(&'*').is_some() {
                out.push_str("%!(BADPREC)");
            } else {
                while chars.next_if(|c| c.is_ascii_digit()).is_some() {}
            }
        }
        match chars.next() {
            None => out.push_str("%!(NOVERB)"),
            Some('%') => out.push('%'),
            Some(v) if bad_index => out.push_str(&format!("%!{v}(BADINDEX)")),
            Some(v) => out.push_str(&format!("%!{v}(MISSING)")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_sprintf_without_arguments() {
        assert_eq!(sprintf_no_args("plain"), "plain");
        assert_eq!(sprintf_no_args("a%d"), "a%!d(MISSING)");
        assert_eq!(sprintf_no_args("100%%"), "100%");
        assert_eq!(
            sprintf_no_args("zz%s%%%5.2q% for"),
            "zz%!s(MISSING)%%!q(MISSING)%!f(MISSING)or"
        );
        assert_eq!(sprintf_no_args("end%"), "end%!(NOVERB)");
        assert_eq!(sprintf_no_args("%*d"), "%!(BADWIDTH)%!d(MISSING)");
        assert_eq!(sprintf_no_args("%[1]d"), "%!d(BADINDEX)");
    }
}
