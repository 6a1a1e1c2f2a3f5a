//! etcdctl's `-w table`: a table as github.com/olekukonko/tablewriter
//! (v0.0.5, the version etcdctl 3.4.23 is built with here) draws it with
//! etcdctl's settings: the defaults, and every cell aligned right.
//!
//! ```text
//! +-----------------+------------+
//! |    ENDPOINT     |    HASH    |
//! +-----------------+------------+
//! | 127.0.0.1:23790 | 1706303196 |
//! +-----------------+------------+
//! ```
//!
//! What tablewriter does, and so what [`render`] does:
//!
//! - Headers are upper-cased, `_` and `.` turned into spaces (a `.`
//!   between digits or spaces is kept), then trimmed; each is centred in
//!   its column, with the extra space of an odd gap on the right.
//! - Cells are aligned right (etcdctl's `SetAlignment(ALIGN_RIGHT)`).
//! - A cell (header or row) wider than 30 terminal cells is wrapped at
//!   spaces: its lines are first joined into one paragraph, then broken at
//!   a width of `min(widest line, 30)` (or the longest word, if longer)
//!   by minimum raggedness, the sum of the squares of each line's shortfall.
//!   Text without spaces is never broken: the column grows instead.
//! - A column is as wide as its widest line, header included, measured in
//!   terminal cells (East Asian wide characters count two, combining marks
//!   none, ANSI colour sequences none); every cell gets one space of
//!   padding on each side.
//! - The lines a row's shorter cells lack are filled with two spaces
//!   (right-aligned like text: blank in any column at least two wide).
//! - A row prints only the cells it has; the borders span every column.
//!
//! Upstream etcd 3.4 release binaries pin an older tablewriter (2017). It
//! never wraps headers, turns every `.` of a header into a space, and
//! wraps a cell at the width its column has reached so far rather than at
//! the cell's own: the same output for every table etcdctl prints, unless
//! a column holds both a word longer than 30 cells and, in a later row, a
//! spaced cell longer than 30.

use unicode_width::UnicodeWidthChar;

/// Cells wider than this are wrapped (tablewriter's `MAX_ROW_WIDTH`).
const WRAP_WIDTH: usize = 30;

/// tablewriter's line breaker weighs every pair of break points, in
/// quadratic time and (in Go) memory. Past this many words a cell is kept
/// on one line instead: no etcdctl table comes near it (Go would need
/// gigabytes for such a cell), and it bounds the work on any input.
const WRAP_WORDS_MAX: usize = 4096;

/// A table as etcdctl's tablewriter prints it, every line ending in `\n`:
/// the header row formatted as above, the cells aligned right, wrapped at
/// 30 cells, inside `+---+` and `|` borders.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    let header_cells = measure_row(header, &mut widths);
    let row_cells: Vec<Vec<Lines>> = rows.iter().map(|r| measure_row(r, &mut widths)).collect();

    let mut out = String::new();
    border(&mut out, &widths);
    // No header at all: neither the header row nor the line under it.
    if !header_cells.is_empty() {
        for line in 0..height(&header_cells) {
            out.push('|');
            for (column, width) in widths.iter().enumerate() {
                let text = header_cells
                    .get(column)
                    .and_then(|cell| cell.get(line))
                    .map_or_else(String::new, |l| title(l));
                out.push(' ');
                pad_center(&mut out, &text, *width);
                out.push_str(" |");
            }
            out.push('\n');
        }
        border(&mut out, &widths);
    }
    for cells in &row_cells {
        for line in 0..height(cells) {
            for (cell, width) in cells.iter().zip(&widths) {
                let text = cell.get(line).map_or("  ", String::as_str);
                out.push_str("| ");
                pad_left(&mut out, text, *width);
                out.push(' ');
            }
            out.push_str("|\n");
        }
    }
    border(&mut out, &widths);
    out
}

/// A cell broken into the lines it prints as.
type Lines = Vec<String>;

/// Breaks each cell of a row into lines and widens `widths` to fit them.
fn measure_row<S: AsRef<str>>(row: &[S], widths: &mut Vec<usize>) -> Vec<Lines> {
    row.iter()
        .enumerate()
        .map(|(column, text)| {
            let (lines, width) = wrap_cell(text.as_ref());
            match widths.get_mut(column) {
                Some(w) => *w = (*w).max(width),
                None => widths.push(width),
            }
            lines
        })
        .collect()
}

/// How many lines a row takes: its tallest cell's.
fn height(cells: &[Lines]) -> usize {
    cells.iter().map(Vec::len).max().unwrap_or(0)
}

/// `+` and, per column, `-` over its width and padding, then `+`.
fn border(out: &mut String, widths: &[usize]) {
    out.push('+');
    for width in widths {
        out.extend(std::iter::repeat_n('-', width + 2));
        out.push('+');
    }
    out.push('\n');
}

/// A cell's lines and the width they need (tablewriter's
/// `parseDimension` with auto-wrap and reflow on, its defaults).
fn wrap_cell(text: &str) -> (Vec<String>, usize) {
    let limit = text
        .split('\n')
        .map(display_width)
        .max()
        .unwrap_or(0)
        .min(WRAP_WIDTH);
    // Reflow: the cell's lines make one paragraph, re-broken at `limit`.
    let lines = wrap_paragraph(&text.replace('\n', " "), limit);
    let width = lines
        .iter()
        .map(|l| display_width(l))
        .fold(limit, usize::max);
    (lines, width)
}

/// Breaks `text` at single spaces into lines of at most `limit` cells (or
/// of the longest word, if longer) with minimum raggedness: over all
/// lines but the last, the sum of the squared shortfalls, where a line
/// over the limit costs 100000 more (tablewriter's `WrapString`).
fn wrap_paragraph(text: &str, limit: usize) -> Vec<String> {
    // Every space separates two words, so runs of spaces make empty words
    // and survive the re-join.
    let words: Vec<&str> = text.split(' ').collect();
    if words.len() > WRAP_WORDS_MAX {
        return vec![text.to_string()];
    }
    let widths: Vec<usize> = words.iter().map(|w| string_width(w)).collect();
    let limit = widths.iter().copied().fold(limit, usize::max);
    let n = words.len();
    // prefix[k]: width of the first k words, without spaces.
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0usize);
    for w in &widths {
        prefix.push(prefix.last().copied().unwrap_or(0) + w);
    }
    // Width of words i..j (exclusive) on one line, single spaces between.
    let span = |i: usize, j: usize| prefix[j] - prefix[i] + (j - i - 1);

    const TOO_LONG_PENALTY: i64 = 100_000;
    // cost[i]: the least raggedness of words i.. ; next[i]: where the line
    // starting at word i ends. Go starts every cost at MaxInt32 and keeps
    // the first break that beats it. Where none does, Go's break stays 0,
    // it slices backwards and panics; here the rest goes on one line.
    let mut cost = vec![i64::from(i32::MAX); n + 1];
    let mut next = vec![n; n + 1];
    cost[n] = 0;
    for i in (0..n).rev() {
        if span(i, n) <= limit {
            cost[i] = 0;
            next[i] = n;
            continue;
        }
        for j in i + 1..n {
            let len = span(i, j);
            let shortfall = limit as i64 - len as i64;
            let mut c = shortfall.saturating_mul(shortfall).saturating_add(cost[j]);
            if len > limit {
                c = c.saturating_add(TOO_LONG_PENALTY);
            }
            if c < cost[i] {
                cost[i] = c;
                next[i] = j;
            }
        }
    }
    let mut lines = Vec::new();
    let mut i = 0;
    while i < n {
        // `next[i]` is in `i + 1..=n`: the loop ends.
        let end = next[i];
        lines.push(words[i..end].join(" "));
        i = end;
    }
    lines
}

/// A header as tablewriter's `Title` formats it: `_` becomes a space, and
/// so does `.` unless every neighbour is a digit or a space (`0.0` stays);
/// then trimmed and upper-cased. A header that trims to nothing is one
/// space.
fn title(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let is_num_or_space = |c: char| c.is_ascii_digit() || c == ' ';
    for i in 0..chars.len() {
        match chars[i] {
            '_' => chars[i] = ' ',
            '.' => {
                let before = i.checked_sub(1).map(|p| chars[p]);
                let after = chars.get(i + 1).copied();
                if before.is_some_and(|c| !is_num_or_space(c))
                    || after.is_some_and(|c| !is_num_or_space(c))
                {
                    chars[i] = ' ';
                }
            }
            _ => {}
        }
    }
    let replaced: String = chars.into_iter().collect();
    let trimmed = replaced.trim();
    if trimmed.is_empty() && !text.is_empty() {
        return " ".to_string();
    }
    // Go's ToUpper maps rune by rune; where Unicode upper-cases one
    // character into several (`ß` -> `SS`), Go keeps it.
    trimmed
        .chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// `text` right-aligned in `width` cells (left-padded with spaces).
fn pad_left(out: &mut String, text: &str, width: usize) {
    let gap = width.saturating_sub(display_width(text));
    out.extend(std::iter::repeat_n(' ', gap));
    out.push_str(text);
}

/// `text` centred in `width` cells, the odd space on the right.
fn pad_center(out: &mut String, text: &str, width: usize) {
    let gap = width.saturating_sub(display_width(text));
    out.extend(std::iter::repeat_n(' ', gap / 2));
    out.push_str(text);
    out.extend(std::iter::repeat_n(' ', gap - gap / 2));
}

/// Width in terminal cells without ANSI colour sequences (tablewriter's
/// `DisplayWidth`).
fn display_width(text: &str) -> usize {
    string_width(&strip_ansi(text))
}

/// Removes what tablewriter's pattern `\x1b\[(?:[0-9]{1,3}(?:;[0-9]{1,3})*)?[m|K]`
/// matches: ESC `[`, optionally 1-3 digits and more `;`-separated groups
/// of 1-3 digits, then `m`, `|` or `K`.
fn strip_ansi(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('\x1b') {
        return std::borrow::Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(len) = ansi_sequence_len(&bytes[i..]) {
            out.push_str(&text[copied..i]);
            i += len;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

/// The length of the colour sequence `bytes` starts with, if it does.
fn ansi_sequence_len(bytes: &[u8]) -> Option<usize> {
    let rest = bytes.strip_prefix(b"\x1b[")?;
    let digits = |s: &[u8]| s.iter().take(3).take_while(|b| b.is_ascii_digit()).count();
    let mut i = 0;
    let first = digits(rest);
    if first > 0 {
        i = first;
        // Each further group: `;` then 1-3 digits; a `;` without digits
        // ends the groups (and then cannot be the final letter).
        while rest.get(i) == Some(&b';') {
            let group = digits(&rest[i + 1..]);
            if group == 0 {
                break;
            }
            i += 1 + group;
        }
    }
    match rest.get(i) {
        Some(b'm' | b'|' | b'K') => Some(2 + i + 1),
        _ => None,
    }
}

/// Width in terminal cells, as go-runewidth's `StringWidth` counts it:
/// per grapheme cluster, the width of its first character that has one.
/// Without a segmenter, the clusters that occur in practice are
/// recognised: a zero-width character (combining mark, variation
/// selector) adds nothing, nor does a skin-tone modifier after a
/// character, a pictograph joined to another by U+200D (ZWJ emoji), or
/// the second of a pair of regional indicators (a flag). A combining mark
/// that starts a cluster on its own (first in the text or after a control
/// character) is the one case measured differently: Go counts most of
/// those as one cell.
fn string_width(text: &str) -> usize {
    let mut width = 0;
    let mut previous: Option<char> = None;
    let mut before_zwj: Option<char> = None;
    let mut lone_regional_indicator = false;
    for c in text.chars() {
        let joins = match previous {
            None => false,
            Some(p) if p.is_control() => false,
            Some('\u{200d}') => before_zwj.is_some_and(is_pictograph) && is_pictograph(c),
            Some(_) => ('\u{1f3fb}'..='\u{1f3ff}').contains(&c),
        };
        let pairs_flag = if ('\u{1f1e6}'..='\u{1f1ff}').contains(&c) {
            lone_regional_indicator = !lone_regional_indicator;
            !lone_regional_indicator
        } else {
            lone_regional_indicator = false;
            false
        };
        if !joins && !pairs_flag {
            width += char_width(c);
        }
        if c == '\u{200d}' {
            before_zwj = previous;
        }
        previous = Some(c);
    }
    width
}

/// Emoji that ZWJ sequences join (roughly Extended_Pictographic).
fn is_pictograph(c: char) -> bool {
    ('\u{1f000}'..='\u{1faff}').contains(&c) || ('\u{2600}'..='\u{27bf}').contains(&c)
}

/// One character's width as go-runewidth 0.0.14 gives it outside East
/// Asian locales: 0 for control and zero-width characters, 2 for East
/// Asian wide and fullwidth ones, else 1. unicode-width's tables, except
/// where the two disagree on a character that stands on its own.
fn char_width(c: char) -> usize {
    match c {
        '\u{ad}'
        | '\u{cf3}'
        | '\u{2028}'
        | '\u{2029}'
        | '\u{fff9}'..='\u{fffb}'
        | '\u{fffe}'
        | '\u{ffff}'
        | '\u{1d166}'
        | '\u{1d16d}' => 0,
        '\u{17a4}'
        | '\u{17d8}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}'
        | '\u{2ffc}'..='\u{2fff}'
        | '\u{31ef}' => 1,
        '\u{3164}' | '\u{16fe4}' => 2,
        _ => c.width().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    //! Expected tables are etcdctl 3.4.23's output against etcd 3.4.23.

    use super::*;

    fn rows(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect()
    }

    const MEMBER_HEADER: &[&str] = &[
        "ID",
        "Status",
        "Name",
        "Peer Addrs",
        "Client Addrs",
        "Is Learner",
    ];
    const STATUS_HEADER: &[&str] = &[
        "endpoint",
        "ID",
        "version",
        "db size",
        "is leader",
        "is learner",
        "raft term",
        "raft index",
        "raft applied index",
        "errors",
    ];

    #[test]
    fn member_list() {
        let table = render(
            MEMBER_HEADER,
            &rows(&[&[
                "2e1259d415f2a040",
                "started",
                "default",
                "http://127.0.0.1:23800",
                "http://127.0.0.1:23790",
                "false",
            ]]),
        );
        assert_eq!(
            table,
            "\
+------------------+---------+---------+------------------------+------------------------+------------+
|        ID        | STATUS  |  NAME   |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |
+------------------+---------+---------+------------------------+------------------------+------------+
| 2e1259d415f2a040 | started | default | http://127.0.0.1:23800 | http://127.0.0.1:23790 |      false |
+------------------+---------+---------+------------------------+------------------------+------------+
"
        );
    }

    #[test]
    fn member_list_long_cells() {
        // Comma-joined URLs have no space: the column grows past 30.
        let table = render(
            MEMBER_HEADER,
            &rows(&[
                &[
                    "4b73543d01ad01a",
                    "unstarted",
                    "",
                    "http://127.0.0.1:23801,http://127.0.0.1:23802,http://localhost.localdomain:23803",
                    "",
                    "true",
                ],
                &[
                    "2e1259d415f2a040",
                    "started",
                    "default",
                    "http://127.0.0.1:23800",
                    "http://127.0.0.1:23790",
                    "false",
                ],
            ]),
        );
        assert_eq!(
            table,
            "\
+------------------+-----------+---------+----------------------------------------------------------------------------------+------------------------+------------+
|        ID        |  STATUS   |  NAME   |                                    PEER ADDRS                                    |      CLIENT ADDRS      | IS LEARNER |
+------------------+-----------+---------+----------------------------------------------------------------------------------+------------------------+------------+
|  4b73543d01ad01a | unstarted |         | http://127.0.0.1:23801,http://127.0.0.1:23802,http://localhost.localdomain:23803 |                        |       true |
| 2e1259d415f2a040 |   started | default |                                                           http://127.0.0.1:23800 | http://127.0.0.1:23790 |      false |
+------------------+-----------+---------+----------------------------------------------------------------------------------+------------------------+------------+
"
        );
    }

    #[test]
    fn member_name_wraps_with_wide_characters() {
        // etcd --name 'node <one> & 日本語 two three four five six': 43
        // cells, wrapped at 30; 日本語 is six cells wide.
        let table = render(
            MEMBER_HEADER,
            &rows(&[&[
                "bdae9bbc11dd390d",
                "started",
                "node <one> & 日本語 two three four five six",
                "http://127.0.0.1:23801",
                "http://127.0.0.1:23791",
                "false",
            ]]),
        );
        assert_eq!(
            table,
            "\
+------------------+---------+--------------------------------+------------------------+------------------------+------------+
|        ID        | STATUS  |              NAME              |       PEER ADDRS       |      CLIENT ADDRS      | IS LEARNER |
+------------------+---------+--------------------------------+------------------------+------------------------+------------+
| bdae9bbc11dd390d | started |  node <one> & 日本語 two three | http://127.0.0.1:23801 | http://127.0.0.1:23791 |      false |
|                  |         |                  four five six |                        |                        |            |
+------------------+---------+--------------------------------+------------------------+------------------------+------------+
"
        );
    }

    #[test]
    fn endpoint_status() {
        let table = render(
            STATUS_HEADER,
            &rows(&[&[
                "127.0.0.1:23790",
                "2e1259d415f2a040",
                "3.4.23",
                "20 kB",
                "true",
                "false",
                "2",
                "24",
                "24",
                "",
            ]]),
        );
        assert_eq!(
            table,
            "\
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+
|    ENDPOINT     |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX | ERRORS |
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+
| 127.0.0.1:23790 | 2e1259d415f2a040 |  3.4.23 |   20 kB |      true |      false |         2 |         24 |                 24 |        |
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------+
"
        );
    }

    #[test]
    fn endpoint_status_alarm_wraps() {
        // A NOSPACE alarm: etcd's error text ends in a space, which wraps
        // onto the second line with `alarm:NOSPACE`.
        let table = render(
            STATUS_HEADER,
            &rows(&[&[
                "127.0.0.1:23791",
                "bdae9bbc11dd390d",
                "3.4.23",
                "143 kB",
                "true",
                "false",
                "2",
                "11",
                "11",
                "memberID:13668033151171901709 alarm:NOSPACE ",
            ]]),
        );
        assert_eq!(
            table,
            "\
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------------------------------+
|    ENDPOINT     |        ID        | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX |             ERRORS             |
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------------------------------+
| 127.0.0.1:23791 | bdae9bbc11dd390d |  3.4.23 |  143 kB |      true |      false |         2 |         11 |                 11 |  memberID:13668033151171901709 |
|                 |                  |         |         |           |            |           |            |                    |                 alarm:NOSPACE  |
+-----------------+------------------+---------+---------+-----------+------------+-----------+------------+--------------------+--------------------------------+
"
        );
    }

    #[test]
    fn endpoint_health() {
        let table = render(
            &["endpoint", "health", "took", "error"],
            &rows(&[
                &["127.0.0.1:23790", "true", "3.81354ms", ""],
                &[
                    "127.0.0.1:23799",
                    "false",
                    "1.000398123s",
                    "context deadline exceeded",
                ],
            ]),
        );
        assert_eq!(
            table,
            "\
+-----------------+--------+--------------+---------------------------+
|    ENDPOINT     | HEALTH |     TOOK     |           ERROR           |
+-----------------+--------+--------------+---------------------------+
| 127.0.0.1:23790 |   true |    3.81354ms |                           |
| 127.0.0.1:23799 |  false | 1.000398123s | context deadline exceeded |
+-----------------+--------+--------------+---------------------------+
"
        );
    }

    #[test]
    fn endpoint_hashkv_and_snapshot_status() {
        assert_eq!(
            render(
                &["endpoint", "hash"],
                &rows(&[&["127.0.0.1:23790", "1706303196"]])
            ),
            "\
+-----------------+------------+
|    ENDPOINT     |    HASH    |
+-----------------+------------+
| 127.0.0.1:23790 | 1706303196 |
+-----------------+------------+
"
        );
        assert_eq!(
            render(
                &["hash", "revision", "total keys", "total size"],
                &rows(&[&["9389a225", "13", "20", "20 kB"]])
            ),
            "\
+----------+----------+------------+------------+
|   HASH   | REVISION | TOTAL KEYS | TOTAL SIZE |
+----------+----------+------------+------------+
| 9389a225 |       13 |         20 |      20 kB |
+----------+----------+------------+------------+
"
        );
    }

    #[test]
    fn degenerate_tables() {
        // No header: no header row and no line under it.
        assert_eq!(render(&[], &rows(&[&["a"]])), "+---+\n| a |\n+---+\n");
        assert_eq!(render(&[], &[]), "+\n+\n");
        // A row shorter than the header prints only its cells; an empty
        // row prints nothing.
        assert_eq!(
            render(&["a", "b"], &rows(&[&["x"], &[]])),
            "+---+---+\n| A | B |\n+---+---+\n| x |\n+---+---+\n"
        );
        // A filler line in a one-wide column is two spaces, as in Go; a
        // wrapped cell's column is 30 wide even if its lines are narrower.
        assert_eq!(
            render(
                &["a", "b"],
                &rows(&[&["x", "aaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbb"]])
            ),
            "\
+---+--------------------------------+
| A |               B                |
+---+--------------------------------+
| x |           aaaaaaaaaaaaaaaaaaaa |
|    |             bbbbbbbbbbbbbbbbbb |
+---+--------------------------------+
"
        );
    }

    #[test]
    fn titles() {
        assert_eq!(title("raft applied index"), "RAFT APPLIED INDEX");
        assert_eq!(title("db_size.x"), "DB SIZE X");
        assert_eq!(title("v1.5"), "V1.5");
        assert_eq!(title("1.5"), "1.5");
        assert_eq!(title("1.x"), "1 X");
        assert_eq!(title(" _ "), " ");
        assert_eq!(title(""), "");
        assert_eq!(title("straße"), "STRAßE");
    }

    #[test]
    fn wrapping() {
        // A multi-line cell is one paragraph, broken at its widest line.
        assert_eq!(wrap_cell("a\nb"), (vec!["a".into(), "b".into()], 1));
        assert_eq!(wrap_cell("ab\nc d"), (vec!["ab".into(), "c d".into()], 3));
        // Balanced lines rather than greedy ones.
        let text = "aaaa bb cc dddddd eeeeeeeeeeeeeeeeeeeeeeeeee ffff gg";
        let (lines, width) = wrap_cell(text);
        assert_eq!(
            lines,
            ["aaaa bb cc dddddd", "eeeeeeeeeeeeeeeeeeeeeeeeee", "ffff gg"]
        );
        assert_eq!(width, 30);
        // A word longer than 30 widens the column.
        let long = "x".repeat(40);
        assert_eq!(
            wrap_cell(&format!("{long} y")),
            (vec![long.clone(), "y".into()], 40)
        );
        assert_eq!(wrap_cell(""), (vec![String::new()], 0));
        // Bounded work on absurd input.
        let many = "a ".repeat(WRAP_WORDS_MAX + 1);
        assert_eq!(wrap_cell(&many).0.len(), 1);
    }

    #[test]
    fn widths() {
        assert_eq!(display_width("abc"), 3);
        assert_eq!(display_width("日本語"), 6);
        assert_eq!(display_width("e\u{301}"), 1);
        assert_eq!(display_width("\x1b[31mred\x1b[0m"), 3);
        assert_eq!(display_width("\x1b[1;31;40mx\x1b[K"), 1);
        assert_eq!(display_width("\x1b[1234m"), 6);
        assert_eq!(display_width("a\u{ad}\u{7}b"), 2);
        // Checked against go-runewidth 0.0.14 (StringWidth).
        assert_eq!(display_width("👨\u{200d}👩\u{200d}👧"), 2);
        assert_eq!(display_width("a\u{200d}b"), 2);
        assert_eq!(display_width("👍\u{1f3fb}"), 2);
        assert_eq!(display_width("\u{1f3fb}"), 2);
        assert_eq!(display_width("\t\u{1f3fb}"), 2);
        assert_eq!(display_width("x\u{591}"), 1);
        assert_eq!(display_width("\u{2028}"), 0);
        assert_eq!(display_width("🇯🇵🇫"), 2);
    }
}
