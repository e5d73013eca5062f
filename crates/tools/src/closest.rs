//! Finding the text the model probably meant when its `old_str` matches nothing.
//!
//! The file is compared window by window (as many lines as `old_str` has) against `old_str`,
//! line by line, after normalising whitespace. Lines are compared by the Dice coefficient of
//! their character bigrams: cheap enough for large files, and tolerant of the small
//! differences (indentation, a renamed variable, a missing comma) that make an edit fail.

/// Files with more lines than this are only searched in their first this-many lines.
const MAX_LINES_SEARCHED: usize = 100_000;

/// The best-matching window of a file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate {
    /// First line of the window, 1-based.
    pub first_line: usize,
    /// Last line of the window, 1-based, inclusive.
    pub last_line: usize,
    /// Similarity in `0.0..=1.0`.
    pub similarity: f64,
    /// The window equals `old_str` once whitespace is normalised.
    pub whitespace_only: bool,
}

/// Collapses runs of whitespace to one space and trims both ends.
fn normalize(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Sorted character bigrams of a normalised line (a one-character line is its own bigram).
fn bigrams(line: &str) -> Vec<u64> {
    let chars: Vec<char> = line.chars().collect();
    let mut grams: Vec<u64> = match chars.len() {
        0 => Vec::new(),
        1 => vec![u64::from(u32::from(chars[0]))],
        _ => {
            chars.windows(2).map(|pair| (u64::from(u32::from(pair[0])) << 32) | u64::from(u32::from(pair[1]))).collect()
        }
    };
    grams.sort_unstable();
    grams
}

/// Dice coefficient of two sorted bigram multisets.
fn dice(a: &[u64], b: &[u64]) -> f64 {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return 1.0,
        (true, false) | (false, true) => return 0.0,
        _ => {}
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    (2 * common) as f64 / (a.len() + b.len()) as f64
}

/// The window of `content` most similar to `needle`, if the file has any lines.
pub(crate) fn closest_window(content: &str, needle: &str) -> Option<Candidate> {
    let file_lines: Vec<&str> = content.lines().take(MAX_LINES_SEARCHED).collect();
    // Blank lines at either end of the needle are noise for the comparison.
    let needle_lines: Vec<&str> = {
        let all: Vec<&str> = needle.lines().collect();
        match (all.iter().position(|l| !l.trim().is_empty()), all.iter().rposition(|l| !l.trim().is_empty())) {
            (Some(start), Some(end)) => all[start..=end].to_vec(),
            _ => Vec::new(),
        }
    };
    if file_lines.is_empty() || needle_lines.is_empty() {
        return None;
    }
    let width = needle_lines.len().min(file_lines.len());
    let file_norm: Vec<String> = file_lines.iter().map(|l| normalize(l)).collect();
    let needle_norm: Vec<String> = needle_lines.iter().map(|l| normalize(l)).collect();
    let file_grams: Vec<Vec<u64>> = file_norm.iter().map(|l| bigrams(l)).collect();
    let needle_grams: Vec<Vec<u64>> = needle_norm.iter().map(|l| bigrams(l)).collect();

    let mut best: Option<(usize, f64)> = None;
    for start in 0..=(file_lines.len() - width) {
        let total: f64 = (0..width).map(|k| dice(&file_grams[start + k], &needle_grams[k])).sum();
        // A needle longer than the file is compared against the whole file.
        let score = total / needle_lines.len() as f64;
        if best.is_none_or(|(_, best_score)| score > best_score) {
            best = Some((start, score));
        }
    }
    let (start, similarity) = best?;
    let whitespace_only = width == needle_norm.len() && file_norm[start..start + width] == needle_norm[..];
    Some(Candidate { first_line: start + 1, last_line: start + width, similarity, whitespace_only })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "fn main() {\n    let total = 1 + 2;\n    println!(\"{total}\");\n}\n\nfn other() {}\n";

    #[test]
    fn finds_the_window_with_a_small_difference() {
        let found = closest_window(FILE, "let totl = 1 + 2;\nprintln!(\"{totl}\");").unwrap();
        assert_eq!((found.first_line, found.last_line), (2, 3));
        assert!(found.similarity > 0.6, "{found:?}");
        assert!(!found.whitespace_only);
    }

    #[test]
    fn notices_a_whitespace_only_difference() {
        let found = closest_window(FILE, "  let total = 1 +  2;").unwrap();
        assert_eq!((found.first_line, found.last_line), (2, 2));
        assert!(found.whitespace_only);
    }

    #[test]
    fn handles_needles_longer_than_the_file() {
        let found = closest_window("one line", "one line\nand another\nand more").unwrap();
        assert_eq!((found.first_line, found.last_line), (1, 1));
        assert!(found.similarity < 0.5);
    }

    #[test]
    fn has_nothing_for_empty_input() {
        assert_eq!(closest_window("", "x"), None);
        assert_eq!(closest_window("x", "\n\n"), None);
    }
}
