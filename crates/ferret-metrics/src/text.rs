//! From prometheus-client's OpenMetrics text to the Prometheus text
//! format 0.0.4 that etcd 3.4 serves (`text/plain; version=0.0.4`), so
//! that a scrape of ferretcd reads like a scrape of etcd, line for line:
//!
//! - a counter's family is named as its samples are, `_total` included
//!   (OpenMetrics names the family without it);
//! - numbers are written as Go's `strconv.FormatFloat(v, 'g', -1, 64)`
//!   writes them (`1`, `0.005`, `2.147483648e+09`), sample values and
//!   `le` bounds alike;
//! - families come sorted by name, as client_golang gathers them;
//! - no `# EOF` line.

/// Converts one OpenMetrics exposition (as prometheus-client encodes a
/// registry) into the 0.0.4 text format.
pub fn to_prometheus_text(open_metrics: &str) -> String {
    let mut families: Vec<(String, Vec<String>)> = Vec::new();
    let mut lines = open_metrics.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let mut family = name.to_string();
            let mut kept = Vec::new();
            if let Some(kind) = lines.peek().and_then(|l| l.strip_prefix("# TYPE ")) {
                let kind = kind.rsplit_once(' ').map_or("", |(_, k)| k).to_string();
                lines.next();
                if kind == "counter" && !family.ends_with("_total") {
                    family.push_str("_total");
                }
                kept.push(format!("# HELP {family} {help}"));
                kept.push(format!("# TYPE {family} {kind}"));
            } else {
                kept.push(format!("# HELP {family} {help}"));
            }
            families.push((family, kept));
            continue;
        }
        let sample = go_sample(line);
        match families.last_mut() {
            Some((_, kept)) => kept.push(sample),
            None => families.push((String::new(), vec![sample])),
        }
    }
    families.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::with_capacity(open_metrics.len());
    for (_, lines) in families {
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// One sample line with its value, and its `le` label if any, in Go's
/// number format.
fn go_sample(line: &str) -> String {
    let Some((series, value)) = line.rsplit_once(' ') else {
        return line.to_string();
    };
    let series = match series.find("le=\"") {
        Some(at) => {
            let start = at + 4;
            match series[start..].find('"') {
                Some(len) => {
                    let bound = &series[start..start + len];
                    let go = bound.parse::<f64>().map_or(bound.to_string(), go_float);
                    format!("{}{}{}", &series[..start], go, &series[start + len..])
                }
                None => series.to_string(),
            }
        }
        None => series.to_string(),
    };
    let value = value.parse::<f64>().map_or(value.to_string(), go_float);
    format!("{series} {value}")
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`: the shortest digits that
/// read back as `v`; exponent form when the exponent is below -4 or at
/// least 6 (then at least two exponent digits, with a sign).
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return "0".into();
    }
    // Rust's `{:e}` is also the shortest round-trip form: `d.ddde<exp>`.
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e}'s exponent is a number");
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_gos() {
        for (v, go) in [
            (1.0, "1"),
            (0.005, "0.005"),
            (0.0001, "0.0001"),
            (0.00005, "5e-05"),
            (2147483648.0, "2.147483648e+09"),
            (25124864.0, "2.5124864e+07"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (655.36, "655.36"),
            (u64::MAX as f64, "1.8446744073709552e+19"),
            (-3.5, "-3.5"),
            (0.0, "0"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(go_float(v), go, "{v}");
        }
    }

    #[test]
    fn counters_are_named_as_their_samples_and_families_sorted() {
        let om = "# HELP b_seen The b.\n# TYPE b_seen counter\nb_seen_total 3\n\
                  # HELP a_hist The a.\n# TYPE a_hist histogram\na_hist_sum 0.5\na_hist_count 1\n\
                  a_hist_bucket{le=\"1.0\"} 1\na_hist_bucket{le=\"+Inf\"} 1\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_hist The a.\n# TYPE a_hist histogram\na_hist_sum 0.5\na_hist_count 1\n\
             a_hist_bucket{le=\"1\"} 1\na_hist_bucket{le=\"+Inf\"} 1\n\
             # HELP b_seen_total The b.\n# TYPE b_seen_total counter\nb_seen_total 3\n"
        );
    }
}
