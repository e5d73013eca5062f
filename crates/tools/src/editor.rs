//! `editor`: view, create and edit files in the workspace, with undo.
//!
//! Every path goes through the sandbox, which confines it to the workspace. The tool keeps,
//! per session, the previous contents of each file it changed so `undo_edit` can step back
//! several edits.

use crate::closest::closest_window;
use crate::excerpt::{human_bytes, lines, numbered_lines};
use crate::{Tool, ToolContext, ToolOutput, parse_input, schema_for};
use rswe_sandbox::{Sandbox, SandboxError};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Most lines `view` shows without a `view_range`.
pub const VIEW_MAX_LINES: usize = 2_000;
/// Most bytes of numbered text `view` shows at once.
pub const VIEW_MAX_BYTES: usize = 100 * 1024;
/// How many edits of one file `undo_edit` can revert.
pub const UNDO_LEVELS: usize = 20;
/// Lines of context shown around an edit.
const SNIPPET_CONTEXT: usize = 4;
/// Longest edited region shown whole after an edit, in lines.
const SNIPPET_MAX_LINES: usize = 60;
/// Most entries a directory view lists.
const DIR_MAX_ENTRIES: usize = 1_000;
/// Directories whose contents a directory view does not list.
const DIR_SKIPPED: [&str; 3] = [".git", "node_modules", "target"];
/// The sandbox's own directory (saved command outputs): not listed at all.
const DIR_HIDDEN: &str = ".rswe";
/// Bytes looked at to tell a binary file.
const BINARY_SNIFF_BYTES: usize = 8 * 1024;

const DESCRIPTION: &str = "View, create and edit files in the workspace (paths relative to the workspace, or absolute \
inside it). Commands:\n\
- view: a file with line numbers (long files are cut: use view_range [start, end], 1-based, end -1 = to the end), \
or a directory listed two levels deep.\n\
- create: write a new file with file_text. Refuses to overwrite an existing file: edit it instead.\n\
- str_replace: replace old_str with new_str. old_str must match the file exactly once, whitespace and indentation \
included: view the file first and copy the text exactly, with enough surrounding lines to make it unique.\n\
- insert: insert new_str after line insert_line (0 = at the top).\n\
- undo_edit: revert the last edit of the file (repeat to go further back).\n\
View before you edit; make small, targeted edits rather than recreating files.";

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Command {
    View,
    Create,
    StrReplace,
    Insert,
    UndoEdit,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Input {
    /// view, create, str_replace, insert or undo_edit.
    command: Command,
    /// The file or directory: relative to the workspace, or absolute inside it.
    path: String,
    /// view: the lines to show, [start, end], 1-based and inclusive; end -1 means to the end of the file.
    view_range: Option<[i64; 2]>,
    /// create: the whole content of the new file.
    file_text: Option<String>,
    /// str_replace: the exact text to replace; it must occur exactly once in the file.
    old_str: Option<String>,
    /// str_replace: the replacement (empty or omitted deletes old_str). insert: the text to insert.
    new_str: Option<String>,
    /// insert: the line after which new_str goes (0 = before the first line).
    insert_line: Option<usize>,
}

/// The `editor` tool. Keep one per session: it holds that session's undo history.
pub struct EditorTool {
    schema: Value,
    /// Earlier contents of each edited file (by resolved path), oldest first; `None` when the
    /// edit created the file.
    history: Mutex<HashMap<PathBuf, Vec<Option<Vec<u8>>>>>,
}

impl EditorTool {
    pub fn new() -> Self {
        EditorTool { schema: schema_for::<Input>(), history: Mutex::new(HashMap::new()) }
    }

    fn remember(&self, path: &Path, previous: Option<Vec<u8>>) {
        let mut history = self.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let levels = history.entry(path.to_path_buf()).or_default();
        levels.push(previous);
        if levels.len() > UNDO_LEVELS {
            levels.remove(0);
        }
    }

    fn take_last(&self, path: &Path) -> Option<(Option<Vec<u8>>, usize)> {
        let mut history = self.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let levels = history.get_mut(path)?;
        let last = levels.pop()?;
        Some((last, levels.len()))
    }

    fn put_back(&self, path: &Path, previous: Option<Vec<u8>>) {
        let mut history = self.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        history.entry(path.to_path_buf()).or_default().push(previous);
    }
}

impl Default for EditorTool {
    fn default() -> Self {
        EditorTool::new()
    }
}

#[async_trait::async_trait]
impl Tool for EditorTool {
    fn name(&self) -> &str {
        "editor"
    }

    fn description(&self) -> &str {
        DESCRIPTION
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    fn is_read_only(&self, input: &Value) -> bool {
        input.get("command").and_then(Value::as_str) == Some("view")
    }

    async fn run(&self, input: Value, context: &ToolContext) -> ToolOutput {
        let input: Input = match parse_input(self.name(), input, &self.schema) {
            Ok(input) => input,
            Err(error) => return error,
        };
        let sandbox = context.sandbox.as_ref();
        let result = match input.command {
            Command::View => view(sandbox, &input).await,
            Command::Create => self.create(sandbox, &input).await,
            Command::StrReplace => self.str_replace(sandbox, &input).await,
            Command::Insert => self.insert(sandbox, &input).await,
            Command::UndoEdit => self.undo(sandbox, &input).await,
        };
        result.unwrap_or_else(|error| error)
    }
}

/// The error the model sees for a sandbox failure on `path`.
fn sandbox_error(error: SandboxError) -> ToolOutput {
    ToolOutput::error(error.to_string())
}

/// A parameter a command needs was not given.
fn missing(parameter: &str, command: &str) -> ToolOutput {
    ToolOutput::error(format!("`{parameter}` is required for the {command} command"))
}

/// The file as text, or an error saying it is not text.
fn as_text(path: &str, bytes: Vec<u8>) -> Result<String, ToolOutput> {
    String::from_utf8(bytes).map_err(|_| {
        ToolOutput::error(format!(
            "{path} is not UTF-8 text, so the editor cannot change it safely; use the shell tool for binary files"
        ))
    })
}

/// Reads a file that must exist and be text; `shown` names it in errors.
async fn read_text(sandbox: &dyn Sandbox, resolved: &Path, shown: &str) -> Result<String, ToolOutput> {
    let bytes = sandbox.read_file(resolved).await.map_err(sandbox_error)?;
    as_text(shown, bytes)
}

/// Numbered lines `first..=last` of `text`; an edited region longer than the snippet bound
/// shows its start and its end.
fn snippet(text: &str, first: usize, last: usize) -> String {
    let all = lines(text);
    if all.is_empty() {
        return "(the file is now empty)".to_string();
    }
    let first = first.saturating_sub(SNIPPET_CONTEXT).max(1);
    let last = (last + SNIPPET_CONTEXT).min(all.len());
    if last < first {
        return String::new();
    }
    if last - first < SNIPPET_MAX_LINES {
        return numbered_lines(&all, first, last);
    }
    let half = SNIPPET_MAX_LINES / 2;
    format!(
        "{}\n   ...\t[{} lines not shown]\n{}",
        numbered_lines(&all, first, first + half - 1),
        last - first + 1 - 2 * half,
        numbered_lines(&all, last - half + 1, last)
    )
}

/// 1-based line number of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

/// `text` with `\n` turned into `\r\n` when the file uses Windows line endings.
fn match_line_endings(text: &str, crlf: bool) -> String {
    if crlf && !text.contains('\r') { text.replace('\n', "\r\n") } else { text.to_string() }
}

async fn view(sandbox: &dyn Sandbox, input: &Input) -> Result<ToolOutput, ToolOutput> {
    let path = input.path.as_str();
    match sandbox.read_file(Path::new(path)).await {
        Ok(bytes) => view_file(path, &bytes, input.view_range),
        Err(SandboxError::IsADirectory { .. }) => {
            if input.view_range.is_some() {
                return Err(ToolOutput::error(format!("{path} is a directory: view_range applies to files only")));
            }
            view_directory(sandbox, path).await
        }
        Err(error) => Err(sandbox_error(error)),
    }
}

fn view_file(path: &str, bytes: &[u8], range: Option<[i64; 2]>) -> Result<ToolOutput, ToolOutput> {
    if bytes[..bytes.len().min(BINARY_SNIFF_BYTES)].contains(&0) {
        return Ok(ToolOutput::text(format!(
            "{path} is a binary file ({}); view shows text only. Use read_image for images, or the shell tool \
             (e.g. `file`, `xxd | head`) to inspect it.",
            human_bytes(bytes.len() as u64)
        )));
    }
    let text = String::from_utf8_lossy(bytes);
    let all = lines(&text);
    let total = all.len();
    if total == 0 {
        return Ok(ToolOutput::text(format!("{path} is empty.")));
    }
    let (first, last, ranged) = match range {
        None => (1, total, false),
        Some([start, end]) => {
            if start < 1 || start as u64 > total as u64 {
                return Err(ToolOutput::error(format!(
                    "view_range start {start} is outside the file: {path} has {total} lines (lines are numbered from 1)"
                )));
            }
            let last = match end {
                -1 => total,
                end if end < start => {
                    return Err(ToolOutput::error(format!(
                        "view_range end {end} is before its start {start}: give [start, end] with end >= start, or -1 \
                         for the end of the file"
                    )));
                }
                end => (end as u64).min(total as u64) as usize,
            };
            (start as usize, last, true)
        }
    };
    let mut out = String::new();
    let mut shown_last = first - 1;
    for number in first..=last {
        if !ranged && number - first >= VIEW_MAX_LINES {
            break;
        }
        let line = crate::excerpt::numbered_line(number, all[number - 1]);
        if out.len() + line.len() + 1 > VIEW_MAX_BYTES && number > first {
            break;
        }
        out.push_str(&line);
        out.push('\n');
        shown_last = number;
    }
    if shown_last < last {
        out.push_str(&format!(
            "[showing lines {first}-{shown_last} of {total}; use view_range [{}, {}] to see more]",
            shown_last + 1,
            (shown_last + VIEW_MAX_LINES).min(last)
        ));
    } else if ranged && last < total {
        out.push_str(&format!("[lines {first}-{last} of {total}]"));
    } else {
        out.pop();
    }
    Ok(ToolOutput::text(out))
}

async fn view_directory(sandbox: &dyn Sandbox, path: &str) -> Result<ToolOutput, ToolOutput> {
    let root = sandbox.resolve(Path::new(path)).await.map_err(sandbox_error)?;
    let entries = sandbox.list_dir(&root, 2).await.map_err(sandbox_error)?;
    let mut listed = Vec::new();
    let mut left_out = 0usize;
    for entry in &entries {
        let Ok(relative) = entry.path.strip_prefix(&root) else { continue };
        let mut components = relative.components().map(|c| c.as_os_str().to_string_lossy());
        let top = components.next().unwrap_or_default();
        if top == DIR_HIDDEN {
            continue;
        }
        let is_skipped_dir = DIR_SKIPPED.contains(&top.as_ref());
        if is_skipped_dir && components.next().is_some() {
            continue;
        }
        if listed.len() >= DIR_MAX_ENTRIES {
            left_out += 1;
            continue;
        }
        let shown = relative.to_string_lossy();
        listed.push(if is_skipped_dir {
            format!("{shown}/ (contents not listed)")
        } else if entry.is_dir {
            format!("{shown}/")
        } else if entry.is_symlink {
            format!("{shown} (symbolic link)")
        } else {
            format!("{shown} ({})", human_bytes(entry.size))
        });
    }
    let mut out = format!("{} (two levels deep):\n", root.display());
    if listed.is_empty() {
        out.push_str("(empty directory)");
    } else {
        out.push_str(&listed.join("\n"));
    }
    if left_out > 0 {
        out.push_str(&format!(
            "\n[{left_out} more entries not shown: view a subdirectory, or use find_files with a glob]"
        ));
    }
    Ok(ToolOutput::text(out))
}

impl EditorTool {
    async fn create(&self, sandbox: &dyn Sandbox, input: &Input) -> Result<ToolOutput, ToolOutput> {
        let path = input.path.as_str();
        let text = input.file_text.as_deref().ok_or_else(|| missing("file_text", "create"))?;
        let resolved = sandbox.resolve(Path::new(path)).await.map_err(sandbox_error)?;
        match sandbox.read_file(&resolved).await {
            Ok(_) => {
                return Err(ToolOutput::error(format!(
                    "{path} already exists; create does not overwrite files. View it and use str_replace or insert to \
                     change it (or delete it with the shell tool first if you really mean to replace it)"
                )));
            }
            Err(SandboxError::NotFound { .. }) => {}
            Err(SandboxError::IsADirectory { .. }) => {
                return Err(ToolOutput::error(format!("{path} is an existing directory: give a file path")));
            }
            Err(error) => return Err(sandbox_error(error)),
        }
        sandbox.write_file(&resolved, text.as_bytes()).await.map_err(sandbox_error)?;
        self.remember(&resolved, None);
        let line_count = lines(text).len();
        Ok(ToolOutput::text(format!("Created {path} ({line_count} lines, {}).", human_bytes(text.len() as u64))))
    }

    async fn str_replace(&self, sandbox: &dyn Sandbox, input: &Input) -> Result<ToolOutput, ToolOutput> {
        let path = input.path.as_str();
        let old = input.old_str.as_deref().ok_or_else(|| missing("old_str", "str_replace"))?;
        if old.is_empty() {
            return Err(ToolOutput::error(
                "old_str is empty: give the exact text to replace (use insert to add text at a line)",
            ));
        }
        let resolved = sandbox.resolve(Path::new(path)).await.map_err(sandbox_error)?;
        let content = read_text(sandbox, &resolved, path).await?;
        let crlf = content.contains("\r\n");
        let old = match_line_endings(old, crlf);
        let new = match_line_endings(input.new_str.as_deref().unwrap_or(""), crlf);
        let found: Vec<usize> = content.match_indices(old.as_str()).map(|(at, _)| at).collect();
        match found.as_slice() {
            [] => Err(no_match(path, &content, &old)),
            [at] => {
                let at = *at;
                let mut updated = String::with_capacity(content.len() + new.len());
                updated.push_str(&content[..at]);
                updated.push_str(&new);
                updated.push_str(&content[at + old.len()..]);
                sandbox.write_file(&resolved, updated.as_bytes()).await.map_err(sandbox_error)?;
                self.remember(&resolved, Some(content.into_bytes()));
                let first = line_of(&updated, at);
                let last = first + new.matches('\n').count();
                Ok(ToolOutput::text(format!(
                    "Edited {path}. The region now reads:\n{}\nCheck that it is what you intended; undo_edit reverts it.",
                    snippet(&updated, first, last)
                )))
            }
            many => {
                let line_numbers: Vec<String> = many.iter().map(|at| line_of(&content, *at).to_string()).collect();
                Err(ToolOutput::error(format!(
                    "old_str occurs {} times in {path} (starting at lines {}); nothing was changed. Include more \
                     surrounding lines in old_str so that it matches exactly one place.",
                    many.len(),
                    line_numbers.join(", ")
                )))
            }
        }
    }

    async fn insert(&self, sandbox: &dyn Sandbox, input: &Input) -> Result<ToolOutput, ToolOutput> {
        let path = input.path.as_str();
        let after = input.insert_line.ok_or_else(|| missing("insert_line", "insert"))?;
        let new = input.new_str.as_deref().ok_or_else(|| missing("new_str", "insert"))?;
        let resolved = sandbox.resolve(Path::new(path)).await.map_err(sandbox_error)?;
        let content = read_text(sandbox, &resolved, path).await?;
        let total = lines(&content).len();
        if after > total {
            return Err(ToolOutput::error(format!(
                "insert_line {after} is past the end: {path} has {total} lines. Use 0 to insert at the top, {total} \
                 to append at the end"
            )));
        }
        let crlf = content.contains("\r\n");
        let newline = if crlf { "\r\n" } else { "\n" };
        let mut new = match_line_endings(new, crlf);
        if !new.ends_with('\n') {
            new.push_str(newline);
        }
        // Byte offset of the start of line `after + 1`.
        let offset = if after == 0 {
            0
        } else {
            content.match_indices('\n').nth(after - 1).map_or(content.len(), |(at, _)| at + 1)
        };
        let mut updated = String::with_capacity(content.len() + new.len() + 2);
        updated.push_str(&content[..offset]);
        if offset == content.len() && !content.is_empty() && !content.ends_with('\n') {
            updated.push_str(newline);
        }
        updated.push_str(&new);
        updated.push_str(&content[offset..]);
        sandbox.write_file(&resolved, updated.as_bytes()).await.map_err(sandbox_error)?;
        self.remember(&resolved, Some(content.into_bytes()));
        let first = after + 1;
        let last = after + new.matches('\n').count();
        Ok(ToolOutput::text(format!(
            "Inserted {} lines after line {after} of {path}. The region now reads:\n{}",
            last + 1 - first,
            snippet(&updated, first, last)
        )))
    }

    async fn undo(&self, sandbox: &dyn Sandbox, input: &Input) -> Result<ToolOutput, ToolOutput> {
        let path = input.path.as_str();
        let resolved = sandbox.resolve(Path::new(path)).await.map_err(sandbox_error)?;
        let Some((previous, remaining)) = self.take_last(&resolved) else {
            return Err(ToolOutput::error(format!(
                "there is no edit of {path} to undo in this session (undo_edit reverts changes made with this editor \
                 only; use git to restore other changes)"
            )));
        };
        let outcome = match &previous {
            Some(bytes) => sandbox.write_file(&resolved, bytes).await.map_err(sandbox_error),
            None => remove_created_file(sandbox, &resolved).await,
        };
        if let Err(error) = outcome {
            self.put_back(&resolved, previous);
            return Err(error);
        }
        let more = match remaining {
            0 => "No earlier edits of it remain to undo.".to_string(),
            1 => "1 earlier edit can still be undone.".to_string(),
            n => format!("{n} earlier edits can still be undone."),
        };
        match previous {
            None => Ok(ToolOutput::text(format!("Undid the creation of {path}: the file is deleted. {more}"))),
            Some(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let total = lines(&text).len();
                let shown = if total == 0 {
                    "It is now empty.".to_string()
                } else {
                    format!("It now has {total} lines. View it to see the restored content.")
                };
                Ok(ToolOutput::text(format!("Reverted the last edit of {path}. {shown} {more}")))
            }
        }
    }
}

/// Undoing a `create` deletes the file. The sandbox has no delete operation, so this removes
/// the resolved path (confined to the workspace by `resolve`, and the same path on the host).
async fn remove_created_file(sandbox: &dyn Sandbox, resolved: &Path) -> Result<(), ToolOutput> {
    let confirmed = sandbox.resolve(resolved).await.map_err(sandbox_error)?;
    match tokio::fs::remove_file(&confirmed).await {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(ToolOutput::error(format!("could not delete {}: {error}", confirmed.display()))),
    }
}

/// The answer when `old_str` matches nothing: the closest text, with line numbers.
fn no_match(path: &str, content: &str, old: &str) -> ToolOutput {
    let mut message = format!("old_str was not found in {path}; nothing was changed.");
    match closest_window(content, old) {
        Some(candidate) if candidate.similarity >= 0.5 => {
            let all = lines(content);
            let why = if candidate.whitespace_only {
                "it differs only in whitespace or indentation".to_string()
            } else {
                format!("{:.0}% similar", candidate.similarity * 100.0)
            };
            message.push_str(&format!(
                " The closest text is at lines {}-{} ({why}):\n{}\nView the file and copy the text exactly, \
                 whitespace included (without the line-number prefix).",
                candidate.first_line,
                candidate.last_line,
                numbered_lines(&all, candidate.first_line, candidate.last_line)
            ));
        }
        _ => message.push_str(" Nothing in the file resembles it: view the file to see its current content."),
    }
    ToolOutput::error(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_show_context_and_bound_long_regions() {
        let text: String = (1..=200).map(|n| format!("line {n}\n")).collect();
        let short = snippet(&text, 10, 10);
        assert!(short.starts_with("     6\tline 6"));
        assert!(short.ends_with("    14\tline 14"));
        let long = snippet(&text, 10, 150);
        assert!(long.contains("lines not shown"));
        assert!(long.ends_with("   154\tline 154"));
    }

    #[test]
    fn views_a_range_and_bounds_long_files() {
        let text: String = (1..=3000).map(|n| format!("l{n}\n")).collect();
        let whole = view_file("f", text.as_bytes(), None).unwrap().text_content();
        assert!(whole.contains("  2000\tl2000"));
        assert!(!whole.contains("l2001"));
        assert!(whole.ends_with("[showing lines 1-2000 of 3000; use view_range [2001, 3000] to see more]"));
        let range = view_file("f", text.as_bytes(), Some([2999, -1])).unwrap().text_content();
        assert_eq!(range, "  2999\tl2999\n  3000\tl3000");
        assert!(view_file("f", text.as_bytes(), Some([0, 3])).is_err());
        assert!(view_file("f", text.as_bytes(), Some([5, 3])).is_err());
    }
}
