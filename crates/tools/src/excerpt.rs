//! Bounded excerpts of text: numbered lines, cut lines, sizes and durations said plainly.
//!
//! Every tool output is bounded (tokens are money); these helpers say plainly what was left
//! out so the model knows to ask for more.

/// Longest line shown by `editor view` and in snippets, in characters.
pub(crate) const MAX_LINE_CHARS: usize = 2_000;

/// `line` cut to at most `max_chars` characters, saying how many were cut.
pub(crate) fn cut_line(line: &str, max_chars: usize) -> String {
    match line.char_indices().nth(max_chars) {
        None => line.to_string(),
        Some((cut, _)) => {
            let left_out = line[cut..].chars().count();
            format!("{}… [line cut: {left_out} more characters]", &line[..cut])
        }
    }
}

/// One line in `cat -n` style: the number right-aligned in six columns, a tab, the text.
pub(crate) fn numbered_line(number: usize, line: &str) -> String {
    format!("{number:>6}\t{}", cut_line(line, MAX_LINE_CHARS))
}

/// Lines of `text` (without their terminators, a trailing `\r` removed).
pub(crate) fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// `lines[first - 1 .. last]` numbered from `first`, one per output line.
pub(crate) fn numbered_lines(lines: &[&str], first: usize, last: usize) -> String {
    let mut out = String::new();
    for number in first..=last.min(lines.len()) {
        if number == 0 {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&numbered_line(number, lines[number - 1]));
    }
    out
}

/// A human-friendly byte count: `812 bytes`, `14.2 KB`, `3.1 MB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const KB: f64 = 1024.0;
    let value = bytes as f64;
    if value < KB {
        format!("{bytes} bytes")
    } else if value < KB * KB {
        format!("{:.1} KB", value / KB)
    } else if value < KB * KB * KB {
        format!("{:.1} MB", value / (KB * KB))
    } else {
        format!("{:.1} GB", value / (KB * KB * KB))
    }
}

/// A duration as people say it: `85 ms`, `1.4 s`, `2 min 5 s`.
pub(crate) fn human_duration(duration: std::time::Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1_000 {
        format!("{millis} ms")
    } else if millis <= 120_000 && millis.is_multiple_of(1_000) {
        format!("{} s", duration.as_secs())
    } else if millis < 60_000 {
        format!("{:.1} s", duration.as_secs_f64())
    } else {
        let secs = duration.as_secs();
        format!("{} min {} s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_long_lines_at_char_boundaries() {
        assert_eq!(cut_line("short", 10), "short");
        assert_eq!(cut_line("ééééé", 2), "éé… [line cut: 3 more characters]");
    }

    #[test]
    fn numbers_lines_like_cat_n() {
        let text = "a\nb\nc";
        assert_eq!(numbered_lines(&lines(text), 2, 9), "     2\tb\n     3\tc");
    }

    #[test]
    fn says_sizes_and_durations_plainly() {
        assert_eq!(human_bytes(812), "812 bytes");
        assert_eq!(human_bytes(2048), "2.0 KB");
        assert_eq!(human_duration(std::time::Duration::from_millis(85)), "85 ms");
        assert_eq!(human_duration(std::time::Duration::from_secs(60)), "60 s");
        assert_eq!(human_duration(std::time::Duration::from_millis(1_400)), "1.4 s");
        assert_eq!(human_duration(std::time::Duration::from_secs(125)), "2 min 5 s");
    }
}
