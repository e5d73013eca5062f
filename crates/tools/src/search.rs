//! `search` and `find_files`: finding code by content and by name, the way ripgrep does
//! (honouring `.gitignore`, skipping `.git` and the sandbox's `.rswe`), bounded.
//!
//! Both walk the sandbox's workspace directly on this machine: the paths the sandbox
//! resolves are the same on the host as inside the sandbox. The walk and the search are
//! blocking, so they run on the blocking pool and check the cancellation token per file.

use crate::excerpt::cut_line;
use crate::{Tool, ToolContext, ToolOutput, parse_input, schema_for};
use grep_regex::RegexMatcherBuilder;
use grep_searcher::{BinaryDetection, SearcherBuilder, sinks::Lossy};
use ignore::WalkBuilder;
use ignore::overrides::{Override, OverrideBuilder};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Matches shown when `max_results` is not given.
pub const SEARCH_DEFAULT_RESULTS: usize = 100;
/// Most matches shown, whatever `max_results` says.
pub const SEARCH_MAX_RESULTS: usize = 1_000;
/// Most files `find_files` lists.
pub const FIND_MAX_FILES: usize = 200;
/// Longest matching line shown, in characters.
const MATCH_LINE_CHARS: usize = 300;
/// Matches counted beyond those shown before the count becomes "at least".
const COUNT_LIMIT: usize = 100_000;
/// Directories never walked: git's own, and the sandbox's (saved command outputs, logs).
const SKIPPED_DIRS: [&str; 2] = [".git", ".rswe"];
/// Files larger than this are not searched.
const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;

const SEARCH_DESCRIPTION: &str = "Search file contents with a regular expression (Rust regex syntax, like ripgrep), \
honouring .gitignore. Answers `path:line: text` for each matching line, paths relative to the workspace. \
Narrow it with `path` (a directory or file) and `glob` (e.g. \"*.rs\", \"src/**/*.ts\", \"!*_test.go\"); \
escape regex characters for literal text (e.g. `fn foo\\(`). Prefer this over grep in the shell.";

const FIND_DESCRIPTION: &str = "Find files by name with a glob, honouring .gitignore: \"*.rs\" matches at any depth, \
a glob with a slash (\"src/**/mod.rs\") is relative to `path`. Answers the matching files sorted, relative to the \
workspace, at most 200.";

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchInput {
    /// The regular expression to look for.
    pattern: String,
    /// A directory or file to search in, relative to the workspace (default: the whole workspace).
    path: Option<String>,
    /// Only search files matching this glob (e.g. "*.py", "src/**/*.rs"; a leading ! excludes).
    glob: Option<String>,
    /// Match regardless of case (default false).
    case_insensitive: Option<bool>,
    /// How many matching lines to show (default 100, at most 1000).
    max_results: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FindInput {
    /// The glob file names or paths must match, e.g. "*.toml" or "src/**/*_test.rs".
    glob: String,
    /// The directory to look in, relative to the workspace (default: the whole workspace).
    path: Option<String>,
}

/// Where a search or listing happens: the resolved root and the workspace paths are shown
/// relative to.
struct Scope {
    root: PathBuf,
    workspace: PathBuf,
}

impl Scope {
    async fn resolve(context: &ToolContext, path: Option<&str>) -> Result<Scope, ToolOutput> {
        let sandbox = context.sandbox.as_ref();
        let workspace =
            sandbox.resolve(sandbox.workspace()).await.map_err(|error| ToolOutput::error(error.to_string()))?;
        let root = match path {
            None => workspace.clone(),
            Some(path) => {
                sandbox.resolve(Path::new(path)).await.map_err(|error| ToolOutput::error(error.to_string()))?
            }
        };
        if !root.exists() {
            return Err(ToolOutput::error(format!(
                "{} does not exist: check the path, or leave it out to search the whole workspace",
                path.unwrap_or(".")
            )));
        }
        Ok(Scope { root, workspace })
    }

    /// `path` relative to the workspace (`.` for the workspace itself).
    fn show(&self, path: &Path) -> String {
        match path.strip_prefix(&self.workspace) {
            Ok(relative) if relative.as_os_str().is_empty() => ".".to_string(),
            Ok(relative) => relative.to_string_lossy().into_owned(),
            Err(_) => path.to_string_lossy().into_owned(),
        }
    }

    /// A walker over the root honouring ignore files, including hidden files but never `.git`
    /// or `.rswe` below the root.
    fn walker(&self, glob: Option<&Override>) -> WalkBuilder {
        let mut builder = WalkBuilder::new(&self.root);
        builder
            .hidden(false)
            .git_global(false)
            .require_git(false)
            .follow_links(false)
            .max_filesize(Some(MAX_FILE_BYTES))
            .sort_by_file_name(|a, b| a.cmp(b))
            .filter_entry(|entry| entry.depth() == 0 || !SKIPPED_DIRS.iter().any(|name| entry.file_name() == *name));
        if let Some(glob) = glob {
            builder.overrides(glob.clone());
        }
        builder
    }
}

/// The glob as ripgrep applies it: relative to `root`, matching names at any depth unless it
/// contains a slash, `!` excluding.
fn build_glob(root: &Path, glob: &str) -> Result<Override, ToolOutput> {
    let mut builder = OverrideBuilder::new(root);
    builder.add(glob).map_err(|error| ToolOutput::error(format!("invalid glob `{glob}`: {error}")))?;
    builder.build().map_err(|error| ToolOutput::error(format!("invalid glob `{glob}`: {error}")))
}

/// Runs blocking work on the blocking pool.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ToolOutput> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ToolOutput::error(format!("the search failed unexpectedly: {error}")))
}

/// The `search` tool.
pub struct SearchTool {
    schema: Value,
}

impl SearchTool {
    pub fn new() -> Self {
        SearchTool { schema: schema_for::<SearchInput>() }
    }
}

impl Default for SearchTool {
    fn default() -> Self {
        SearchTool::new()
    }
}

#[async_trait::async_trait]
impl Tool for SearchTool {
    fn name(&self) -> &str {
        "search"
    }

    fn description(&self) -> &str {
        SEARCH_DESCRIPTION
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    fn is_read_only(&self, _input: &Value) -> bool {
        true
    }

    async fn run(&self, input: Value, context: &ToolContext) -> ToolOutput {
        let input: SearchInput = match parse_input(self.name(), input, &self.schema) {
            Ok(input) => input,
            Err(error) => return error,
        };
        search(input, context).await.unwrap_or_else(|error| error)
    }
}

async fn search(input: SearchInput, context: &ToolContext) -> Result<ToolOutput, ToolOutput> {
    let matcher = RegexMatcherBuilder::new()
        .case_insensitive(input.case_insensitive.unwrap_or(false))
        .line_terminator(Some(b'\n'))
        .build(&input.pattern)
        .map_err(|error| {
            ToolOutput::error(format!(
                "invalid regular expression `{}`: {error}\nEscape special characters ( ) [ ] {{ }} . * + ? | ^ $ \\ \
                 with a backslash to match them literally.",
                input.pattern
            ))
        })?;
    let scope = Scope::resolve(context, input.path.as_deref()).await?;
    let glob = input.glob.as_deref().map(|glob| build_glob(&scope.root, glob)).transpose()?;
    let limit = input.max_results.unwrap_or(SEARCH_DEFAULT_RESULTS).clamp(1, SEARCH_MAX_RESULTS);
    let cancel: CancellationToken = context.cancel.clone();
    let pattern = input.pattern.clone();

    let (shown, total, cancelled) = blocking(move || {
        let mut searcher = SearcherBuilder::new().line_number(true).binary_detection(BinaryDetection::quit(0)).build();
        let mut shown: Vec<String> = Vec::new();
        let mut total = 0usize;
        for entry in scope.walker(glob.as_ref()).build() {
            if cancel.is_cancelled() {
                return (shown, total, true);
            }
            if total >= COUNT_LIMIT {
                break;
            }
            let Ok(entry) = entry else { continue };
            if !entry.file_type().is_some_and(|kind| kind.is_file()) {
                continue;
            }
            let path = entry.path();
            let display = scope.show(path);
            let result = searcher.search_path(
                &matcher,
                path,
                Lossy(|line_number, line| {
                    total += 1;
                    if shown.len() < limit {
                        let text = cut_line(line.trim_end_matches(['\n', '\r']), MATCH_LINE_CHARS);
                        shown.push(format!("{display}:{line_number}: {text}"));
                    }
                    Ok(total < COUNT_LIMIT)
                }),
            );
            if let Err(error) = result {
                tracing::debug!(path = %path.display(), %error, "search skipped a file it could not read");
            }
        }
        (shown, total, false)
    })
    .await?;

    if cancelled {
        return Err(ToolOutput::error("the search was cancelled"));
    }
    if shown.is_empty() {
        return Ok(ToolOutput::text(format!("No matches for `{pattern}`.")));
    }
    let mut out = shown.join("\n");
    if total > shown.len() {
        let more = total - shown.len();
        let at_least = if total >= COUNT_LIMIT { "at least " } else { "" };
        out.push_str(&format!(
            "\n[{at_least}{more} more matches not shown; narrow the pattern, path or glob, or raise max_results (at \
             most {SEARCH_MAX_RESULTS})]"
        ));
    }
    Ok(ToolOutput::text(out))
}

/// The `find_files` tool.
pub struct FindFilesTool {
    schema: Value,
}

impl FindFilesTool {
    pub fn new() -> Self {
        FindFilesTool { schema: schema_for::<FindInput>() }
    }
}

impl Default for FindFilesTool {
    fn default() -> Self {
        FindFilesTool::new()
    }
}

#[async_trait::async_trait]
impl Tool for FindFilesTool {
    fn name(&self) -> &str {
        "find_files"
    }

    fn description(&self) -> &str {
        FIND_DESCRIPTION
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    fn is_read_only(&self, _input: &Value) -> bool {
        true
    }

    async fn run(&self, input: Value, context: &ToolContext) -> ToolOutput {
        let input: FindInput = match parse_input(self.name(), input, &self.schema) {
            Ok(input) => input,
            Err(error) => return error,
        };
        find_files(input, context).await.unwrap_or_else(|error| error)
    }
}

async fn find_files(input: FindInput, context: &ToolContext) -> Result<ToolOutput, ToolOutput> {
    let scope = Scope::resolve(context, input.path.as_deref()).await?;
    let glob = build_glob(&scope.root, &input.glob)?;
    let cancel = context.cancel.clone();
    let (mut found, cancelled) = blocking(move || {
        let mut found = Vec::new();
        for entry in scope.walker(Some(&glob)).build() {
            if cancel.is_cancelled() {
                return (found, true);
            }
            let Ok(entry) = entry else { continue };
            if entry.file_type().is_some_and(|kind| kind.is_file() || kind.is_symlink()) && entry.depth() > 0 {
                found.push(scope.show(entry.path()));
            }
        }
        (found, false)
    })
    .await?;
    if cancelled {
        return Err(ToolOutput::error("the search was cancelled"));
    }
    if found.is_empty() {
        return Ok(ToolOutput::text(format!("No files match `{}`.", input.glob)));
    }
    found.sort();
    let total = found.len();
    found.truncate(FIND_MAX_FILES);
    let mut out = found.join("\n");
    if total > FIND_MAX_FILES {
        out.push_str(&format!("\n[{} more files not shown; use a narrower glob or path]", total - FIND_MAX_FILES));
    }
    Ok(ToolOutput::text(out))
}
