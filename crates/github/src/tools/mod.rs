//! The agent's GitHub tools: `clone_repository`, `create_pull_request`, `get_pull_request_comments`,
//! `reply_to_review_comment`, `comment` and `wait_for_checks`.
//!
//! Everything that needs a token happens here, on the control plane: clones and pushes run outside the
//! sandbox (see [`crate::git`]), API calls go through [`GitHubAuth`]. The session's state (which
//! repositories it cloned where, the pull requests it opened) lives in a directory the sandbox cannot
//! see, with the mirror that pushes go through, so the agent cannot redirect a push or read a token.
//! Every text a tool returns passes through [`crate::redact`].

/// Implements [`Tool`] for a GitHub tool struct (with `session` and `schema` fields): the input
/// parsed as `$input`, `$call` run, and its text (or error) redacted and bounded.
macro_rules! github_tool {
    ($tool:ident, $name:literal, $description:expr, read_only: $read_only:literal, $input:ty,
     |$this:ident, $parsed:ident, $context:ident| $call:expr) => {
        #[async_trait::async_trait]
        impl rswe_tools::Tool for $tool {
            fn name(&self) -> &str {
                $name
            }

            fn description(&self) -> &str {
                $description
            }

            fn input_schema(&self) -> serde_json::Value {
                self.schema.clone()
            }

            fn is_read_only(&self, _input: &serde_json::Value) -> bool {
                $read_only
            }

            async fn run(
                &self,
                input: serde_json::Value,
                $context: &rswe_tools::ToolContext,
            ) -> rswe_tools::ToolOutput {
                let $parsed: $input = match rswe_tools::parse_input(self.name(), input, &self.schema) {
                    Ok(input) => input,
                    Err(output) => return output,
                };
                let $this = self;
                match $call.await {
                    Ok(text) => self.session.output(&text),
                    Err(text) => self.session.error(&text),
                }
            }
        }
    };
}

mod checks;
mod clone;
mod comments;
mod pull_request;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rswe_tools::{Tool, ToolOutput};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::GitHubAuth;
use crate::reference::{ItemKind, ItemRef, RepoRef, parse_item, parse_repo, web_host};
use crate::settings::GitHubSettings;

/// How long one clone or push may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(600);
/// The largest text a tool returns, in bytes.
const MAX_OUTPUT_BYTES: usize = 16 * 1024;

/// A repository this session cloned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Checkout {
    /// The clone's directory (a host path, the same in the sandbox).
    dir: PathBuf,
    /// The repository the work is for (`owner/name`).
    upstream: String,
    upstream_url: String,
    /// Where branches are pushed: `upstream` itself, or the fork.
    origin: String,
    origin_url: String,
    default_branch: String,
    /// The default branch's commit when cloned (the push mirror has its history), if any.
    #[serde(default)]
    base_sha: Option<String>,
}

impl Checkout {
    fn forked(&self) -> bool {
        !self.origin.eq_ignore_ascii_case(&self.upstream)
    }
}

/// A pull request this session opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Opened {
    /// The repository it was opened in (`owner/name`).
    repository: String,
    /// `owner:branch`.
    head: String,
    number: u64,
    url: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    checkouts: Vec<Checkout>,
    pulls: Vec<Opened>,
    /// Branches this session created by pushing them, as `owner/name:branch`.
    #[serde(default)]
    pushed: Vec<String>,
}

/// What the GitHub tools of one session share.
pub struct GitHubSession {
    auth: GitHubAuth,
    settings: Arc<GitHubSettings>,
    /// A host directory the sandbox cannot see: the state file and the push mirror.
    state_dir: PathBuf,
    /// The issue or pull request the session was started from.
    origin: Option<ItemRef>,
    /// The session's page in the web UI.
    session_url: Option<String>,
    session_id: String,
    host: String,
    state: Mutex<State>,
    poll_interval: Duration,
    only_origin_repository: bool,
}

/// Where a [`GitHubSession`] comes from.
pub struct SessionContext {
    pub session_id: String,
    /// A host directory outside the workspace, invisible to the sandbox, for the session's GitHub state.
    pub state_dir: PathBuf,
    /// The issue or pull request the session was started from, if any.
    pub origin: Option<ItemRef>,
    /// The session's page in the web UI, linked from pull requests.
    pub session_url: Option<String>,
    /// Keeps the session to `origin`'s repository (and its fork): for sessions started from GitHub,
    /// whose requester was only checked on that repository.
    pub only_origin_repository: bool,
}

impl GitHubSession {
    /// The GitHub side of one session. `auth` should be the session's own ([`GitHubAuth::for_session`]).
    pub fn new(auth: GitHubAuth, settings: Arc<GitHubSettings>, context: SessionContext) -> Arc<GitHubSession> {
        let host = web_host(&settings.api_url).unwrap_or_else(|| "github.com".to_owned());
        let state = std::fs::read(context.state_dir.join(STATE_FILE))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Arc::new(GitHubSession {
            auth,
            settings,
            state_dir: context.state_dir,
            origin: context.origin,
            session_url: context.session_url,
            session_id: context.session_id,
            host,
            state: Mutex::new(state),
            poll_interval: Duration::from_secs(15),
            only_origin_repository: context.only_origin_repository,
        })
    }

    /// How often `wait_for_checks` looks (15 s unless a test says otherwise).
    pub fn with_poll_interval(self: Arc<Self>, interval: Duration) -> Arc<Self> {
        match Arc::try_unwrap(self) {
            Ok(mut session) => {
                session.poll_interval = interval;
                Arc::new(session)
            }
            Err(shared) => shared,
        }
    }

    /// The tools, in a stable order.
    pub fn tools(self: &Arc<Self>) -> Vec<Arc<dyn Tool>> {
        vec![
            Arc::new(clone::CloneRepository::new(self.clone())),
            Arc::new(pull_request::CreatePullRequest::new(self.clone())),
            Arc::new(comments::GetPullRequestComments::new(self.clone())),
            Arc::new(comments::ReplyToReviewComment::new(self.clone())),
            Arc::new(comments::Comment::new(self.clone())),
            Arc::new(checks::WaitForChecks::new(self.clone())),
        ]
    }

    /// The secrets to keep out of output: the tokens handed out so far.
    pub fn secrets(&self) -> Vec<String> {
        self.auth.secrets()
    }

    /// `text` without any token.
    pub fn redact(&self, text: &str) -> String {
        let secrets = self.auth.secrets();
        let known: Vec<&str> = secrets.iter().map(String::as_str).collect();
        crate::redact::redact(text, &known)
    }

    fn output(&self, text: &str) -> ToolOutput {
        ToolOutput::text(bounded(&self.redact(text)))
    }

    fn error(&self, text: &str) -> ToolOutput {
        ToolOutput::error(bounded(&self.redact(text)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn checkouts(&self) -> Vec<Checkout> {
        self.lock().checkouts.clone()
    }

    /// Records a change to the state and writes it down.
    fn update(&self, change: impl FnOnce(&mut State)) {
        let mut state = self.lock();
        change(&mut state);
        if let Err(error) = std::fs::create_dir_all(&self.state_dir)
            .and_then(|()| std::fs::write(self.state_dir.join(STATE_FILE), serde_json::to_vec_pretty(&*state)?))
        {
            tracing::warn!(%error, dir = %self.state_dir.display(), "github: cannot save the session's state");
        }
    }

    /// The bare repository pushes to `origin` (`owner/name`) go through.
    fn mirror(&self, origin: &str) -> PathBuf {
        self.state_dir.join("mirrors").join(format!("{}.git", origin.to_lowercase().replace('/', "--")))
    }

    /// The checkout a tool means: the one holding `directory`, else the only one.
    fn checkout(&self, directory: Option<&str>, workspace: &Path) -> Result<Checkout, String> {
        let checkouts = self.checkouts();
        if let Some(directory) = directory.filter(|d| !d.trim().is_empty()) {
            let wanted = workspace.join(directory.trim());
            return checkouts
                .iter()
                .filter(|c| wanted.starts_with(&c.dir))
                .max_by_key(|c| c.dir.components().count())
                .cloned()
                .ok_or_else(|| format!("{} is not in a repository cloned with clone_repository", wanted.display()));
        }
        match checkouts.as_slice() {
            [] => Err("no repository is cloned yet: call clone_repository first".to_owned()),
            [only] => Ok(only.clone()),
            many => Err(format!(
                "several repositories are cloned ({}): say which with `directory`",
                many.iter().map(|c| c.dir.display().to_string()).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The repository a tool means when none is named: the only checkout's, else the session's origin's.
    fn default_repo(&self) -> Option<RepoRef> {
        let checkouts = self.checkouts();
        if let [only] = checkouts.as_slice() {
            return parse_repo(&only.upstream, &self.host).ok();
        }
        self.origin.as_ref().map(|item| item.repo.clone())
    }

    /// Refuses a repository outside the session's reach: a session started from GitHub works on the
    /// repository it came from (and the fork it made of it) only.
    fn may_use(&self, repo: &RepoRef) -> Result<(), String> {
        let Some(origin) = self.origin.as_ref().filter(|_| self.only_origin_repository) else { return Ok(()) };
        let name = repo.full_name();
        let allowed = origin.repo.full_name().eq_ignore_ascii_case(&name)
            || self
                .checkouts()
                .iter()
                .any(|c| c.origin.eq_ignore_ascii_case(&name) || c.upstream.eq_ignore_ascii_case(&name));
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "this session was started from {} and works on that repository only; {name} is out of its reach",
                origin.repo.full_name()
            ))
        }
    }

    /// An issue or pull request as the model wrote it: a number (in the default repository),
    /// `owner/name#12`, or its URL.
    fn item(&self, value: &Value) -> Result<(RepoRef, u64), String> {
        let (repo, number) = self.any_item(value)?;
        self.may_use(&repo)?;
        Ok((repo, number))
    }

    fn any_item(&self, value: &Value) -> Result<(RepoRef, u64), String> {
        let text = match value {
            Value::Number(number) => number.to_string(),
            Value::String(text) => text.trim().to_owned(),
            _ => String::new(),
        };
        let digits = text.strip_prefix('#').unwrap_or(&text);
        if let Ok(number) = digits.parse::<u64>() {
            return match self.default_repo() {
                Some(repo) => Ok((repo, number)),
                None => Err(format!("which repository is #{number} in? Write owner/name#{number} or its URL")),
            };
        }
        match parse_item(&text, &self.host) {
            Some(item) => Ok((item.repo, item.number)),
            None => Err(format!("`{text}` is not an issue or pull request: write a number, owner/name#12 or its URL")),
        }
    }

    /// The line that links the session's issue, for a pull request opened in `repo`; none when the
    /// session came from a pull request (GitHub numbers both alike, so it asks).
    async fn closes_line(&self, repo: &str) -> Option<String> {
        let origin = self.origin.as_ref().filter(|item| item.kind == ItemKind::Issue)?;
        let (owner, name) = (origin.repo.owner.as_str(), origin.repo.name.as_str());
        if let Ok(api) = self.auth.api_for(owner, name).await
            && let Ok(issue) = api.issue(owner, name, origin.number).await
            && issue.is_pull_request
        {
            return None;
        }
        if origin.repo.full_name().eq_ignore_ascii_case(repo) {
            Some(format!("Closes #{}", origin.number))
        } else {
            Some(format!("Closes {}#{}", origin.repo.full_name(), origin.number))
        }
    }
}

const STATE_FILE: &str = "state.json";

/// The first issue or pull request a task links to on the GitHub that `api_url` serves: what a
/// session started elsewhere (the web UI, Slack, the terminal) works on.
pub fn origin_in(task: &str, api_url: &str) -> Option<ItemRef> {
    let host = web_host(api_url).unwrap_or_else(|| "github.com".to_owned());
    crate::reference::find_items(task, &[&host]).into_iter().next()
}

/// `text` cut to [`MAX_OUTPUT_BYTES`] on a character boundary, saying so.
fn bounded(text: &str) -> String {
    if text.len() <= MAX_OUTPUT_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_OUTPUT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[… {} more bytes not shown]", &text[..end], text.len() - end)
}

/// `text` cut to `max` characters, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_linking_an_issue_is_about_that_issue() {
        let task = "Please look at https://github.com/octo/hello/issues/7 and https://github.com/octo/hello/pull/9";
        let origin = origin_in(task, "https://api.github.com").unwrap();
        assert_eq!((origin.repo.full_name().as_str(), origin.number, origin.kind), ("octo/hello", 7, ItemKind::Issue));
        let ghes = "See https://ghe.acme.com/team/app/pull/3 (and https://github.com/octo/hello/issues/1)";
        let origin = origin_in(ghes, "https://ghe.acme.com/api/v3").unwrap();
        assert_eq!((origin.repo.full_name().as_str(), origin.number), ("team/app", 3));
        assert_eq!(origin_in("fix the login test", "https://api.github.com"), None);
    }

    #[test]
    fn long_output_is_cut_on_a_character_boundary() {
        let text = "é".repeat(MAX_OUTPUT_BYTES);
        let cut = bounded(&text);
        assert!(cut.len() < text.len() && cut.contains("more bytes not shown"));
        assert_eq!(bounded("short"), "short");
    }
}
