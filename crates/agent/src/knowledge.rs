//! Repository instructions: the files coding agents conventionally read (AGENTS.md,
//! CLAUDE.md, Cursor and Cline rules, …), gathered from the repository root down to the
//! working directory, de-duplicated, within a byte budget.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The default budget for all instructions together.
pub const DEFAULT_BUDGET_BYTES: usize = 32 * 1024;

/// Candidate names, in the order they are read within one directory. Directories among
/// them (`.clinerules`, `.cursor/rules`) contribute their files in name order.
const CANDIDATES: &[&str] = &[
    "AGENTS.md",
    "CLAUDE.md",
    ".clinerules",
    ".cursorrules",
    ".cursor/rules",
    ".github/copilot-instructions.md",
    "AmazonQ.md",
    "GEMINI.md",
    ".windsurfrules",
];

/// One instructions file as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstructionFile {
    /// Relative to the repository root.
    pub path: String,
    pub text: String,
}

/// What was gathered, and how to tell whether it changed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Instructions {
    pub files: Vec<InstructionFile>,
    fingerprint: Fingerprint,
}

/// Paths with their size and modification time: cheap to compute at every step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fingerprint(Vec<(PathBuf, u64, Option<SystemTime>)>);

impl Instructions {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether the files on disk differ from what was gathered.
    pub fn is_stale(&self, root: &Path, cwd: &Path) -> bool {
        fingerprint(root, cwd) != self.fingerprint
    }
}

/// The directories from `root` down to `cwd` (just `root` when `cwd` is elsewhere).
fn directories(root: &Path, cwd: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![root.to_path_buf()];
    if let Ok(relative) = cwd.strip_prefix(root) {
        let mut current = root.to_path_buf();
        for part in relative.components() {
            current.push(part);
            dirs.push(current.clone());
        }
    }
    dirs
}

/// Every candidate file that exists, in reading order.
fn candidate_files(root: &Path, cwd: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in directories(root, cwd) {
        for name in CANDIDATES {
            let path = dir.join(name);
            if path.is_file() {
                files.push(path);
            } else if path.is_dir() {
                let mut entries: Vec<PathBuf> = std::fs::read_dir(&path)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .filter(|p| *name != ".cursor/rules" || p.extension().is_some_and(|e| e == "mdc"))
                    .collect();
                entries.sort();
                files.extend(entries);
            }
        }
    }
    files
}

fn fingerprint(root: &Path, cwd: &Path) -> Fingerprint {
    Fingerprint(
        candidate_files(root, cwd)
            .into_iter()
            .map(|path| {
                let meta = std::fs::metadata(&path).ok();
                let size = meta.as_ref().map_or(0, |m| m.len());
                let modified = meta.and_then(|m| m.modified().ok());
                (path, size, modified)
            })
            .collect(),
    )
}

/// Drops a leading `---` … `---` block (Cursor's .mdc frontmatter).
fn strip_frontmatter(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("---\n").or_else(|| text.strip_prefix("---\r\n")) else {
        return text;
    };
    match rest.find("\n---") {
        Some(end) => rest[end + 4..].trim_start_matches(['\r', '\n']),
        None => text,
    }
}

/// Gathers the instructions for work in `cwd` within the repository at `root`.
pub fn gather(root: &Path, cwd: &Path, budget_bytes: usize) -> Instructions {
    let mut seen = HashSet::new();
    let mut used = 0;
    let mut files = Vec::new();
    for path in candidate_files(root, cwd) {
        let Ok(raw) = std::fs::read_to_string(&path) else { continue };
        let mut text = if path.extension().is_some_and(|e| e == "mdc") { strip_frontmatter(&raw) } else { &raw }
            .trim()
            .to_string();
        if text.is_empty() || !seen.insert(text.clone()) {
            continue;
        }
        let relative = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        let room = budget_bytes.saturating_sub(used);
        if room == 0 {
            tracing::debug!(path = %relative, "repository instructions over budget; left out");
            continue;
        }
        if text.len() > room {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let omitted = text.len() - cut;
            text.truncate(cut);
            text.push_str(&format!("\n[… {omitted} more bytes of {relative} left out: read the file for the rest]"));
        }
        used += text.len();
        files.push(InstructionFile { path: relative, text });
    }
    Instructions { files, fingerprint: fingerprint(root, cwd) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn gathers_every_convention_root_to_cwd_without_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "AGENTS.md", "Run make test.");
        write(root, "CLAUDE.md", "Run make test.\n"); // the same text: once
        write(root, ".clinerules/01-style.md", "Tabs, not spaces.");
        write(root, ".cursor/rules/db.mdc", "---\ndescription: db\nglobs: *.sql\n---\nUse migrations.");
        write(root, ".cursor/rules/notes.txt", "not a rule");
        write(root, ".github/copilot-instructions.md", "Prefer small PRs.");
        write(root, "GEMINI.md", "Be terse.");
        write(root, "services/api/AGENTS.md", "The API uses axum.");
        write(root, "services/web/AGENTS.md", "Not on the way.");
        std::fs::create_dir_all(root.join("services/api/src")).unwrap();

        let found = gather(root, &root.join("services/api/src"), DEFAULT_BUDGET_BYTES);
        let paths: Vec<&str> = found.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "AGENTS.md",
                ".clinerules/01-style.md",
                ".cursor/rules/db.mdc",
                ".github/copilot-instructions.md",
                "GEMINI.md",
                "services/api/AGENTS.md"
            ]
        );
        assert_eq!(found.files[2].text, "Use migrations.");
        assert!(!found.is_stale(root, &root.join("services/api/src")));
        write(root, "AGENTS.md", "Run make check.");
        assert!(found.is_stale(root, &root.join("services/api/src")));
    }

    #[test]
    fn the_budget_bounds_the_total() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "AGENTS.md", &"x".repeat(5000));
        write(dir.path(), "CLAUDE.md", "second file");
        let found = gather(dir.path(), dir.path(), 1000);
        assert_eq!(found.files.len(), 1);
        assert!(found.files[0].text.len() < 1100);
        assert!(found.files[0].text.contains("4000 more bytes of AGENTS.md"));
    }
}
