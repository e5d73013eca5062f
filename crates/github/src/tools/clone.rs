//! `clone_repository`: the repository checked out in the workspace, forked first when rswe cannot push
//! to it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rswe_tools::ToolContext;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Checkout, GIT_TIMEOUT, GitHubSession};
use crate::api::{GitHubApi, Repository};
use crate::git;
use crate::reference::{RepoRef, parse_item, parse_repo};

const DESCRIPTION: &str = "Clone a GitHub repository into the workspace, ready to work on. `repository` is `owner/name`, \
its URL, or the URL of one of its issues or pull requests; left out, it is the repository of the issue or pull request \
this session is about. The clone goes to the workspace itself when it is empty, else to a directory named after the \
repository (or `directory`). When you cannot push to the repository, it is forked first: `origin` is then the fork and \
`upstream` the original, and create_pull_request opens the pull request from the fork. Credentials are handled for \
you: do not put tokens in URLs or git config. Afterwards: create a branch, commit, and call create_pull_request.";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    directory: Option<String>,
}

/// The `clone_repository` tool.
pub(super) struct CloneRepository {
    session: Arc<GitHubSession>,
    schema: Value,
}

impl CloneRepository {
    pub(super) fn new(session: Arc<GitHubSession>) -> Self {
        let schema = json!({
            "type": "object",
            "properties": {
                "repository": {
                    "type": "string",
                    "description": "owner/name, the repository's URL, or an issue or pull request URL in it"
                },
                "directory": {
                    "type": "string",
                    "description": "Where to clone, relative to the workspace; by default the workspace when empty, else a directory named after the repository"
                }
            },
            "additionalProperties": false
        });
        CloneRepository { session, schema }
    }
}

github_tool!(CloneRepository, "clone_repository", DESCRIPTION, read_only: false, Input, |tool, input, context| tool.clone_into_workspace(input, context));

impl CloneRepository {
    async fn clone_into_workspace(&self, input: Input, context: &ToolContext) -> Result<String, String> {
        let session = &self.session;
        let repo = match input.repository.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
            Some(text) => match parse_item(text, &session.host) {
                Some(item) if text.contains("://") => item.repo,
                _ => parse_repo(text, &session.host)?,
            },
            None => match &session.origin {
                Some(item) => item.repo.clone(),
                None => return Err("say which repository to clone: `repository` is owner/name or its URL".to_owned()),
            },
        };
        session.may_use(&repo)?;
        let workspace = context.sandbox.workspace().to_path_buf();
        if let Some(existing) = session
            .checkouts()
            .into_iter()
            .find(|c| c.upstream.eq_ignore_ascii_case(&repo.full_name()) && c.dir.exists())
        {
            return Ok(format!(
                "{} is already cloned at {} (push to `origin` = {} through create_pull_request).",
                existing.upstream,
                existing.dir.display(),
                existing.origin
            ));
        }
        let dest = destination(&workspace, input.directory.as_deref(), &repo.name)?;

        let api = session.auth.api_for(&repo.owner, &repo.name).await.map_err(|e| e.to_string())?;
        let upstream = api.repository(&repo.owner, &repo.name).await.map_err(|e| e.to_string())?;
        let upstream_url = clone_url(&upstream, &repo);
        let (origin, origin_url, fork_note) = if upstream.can_push || session.auth.is_app() {
            (upstream.full_name(), upstream_url.clone(), None)
        } else {
            let fork = self.fork(&api, &upstream, context).await?;
            let fork_ref = RepoRef { host: repo.host.clone(), owner: fork.owner.clone(), name: fork.name.clone() };
            let note = format!(
                "You cannot push to {}, so it was forked to {}: `origin` is the fork, `upstream` is {}. \
                 create_pull_request pushes to the fork and opens the pull request on {}.",
                upstream.full_name(),
                fork.full_name(),
                upstream.full_name(),
                upstream.full_name()
            );
            (fork.full_name(), clone_url(&fork, &fork_ref), Some(note))
        };

        // The clone is made where the sandbox cannot reach, configured there, and only then moved
        // into the workspace: git never works with a token in a directory the agent can touch.
        let staging_root = session.state_dir.join("staging");
        std::fs::create_dir_all(&staging_root).map_err(|e| format!("cannot create {}: {e}", staging_root.display()))?;
        let staging = tempfile::Builder::new()
            .prefix("clone-")
            .tempdir_in(&staging_root)
            .map_err(|e| format!("cannot create a directory in {}: {e}", staging_root.display()))?;
        let staged = staging.path().join("repo");
        let token = session.auth.git_token_for(&repo.owner, &repo.name).await.map_err(|e| e.to_string())?;
        git::clone_repository(&upstream_url, &staged, Some(&token), GIT_TIMEOUT, &context.cancel)
            .await
            .map_err(|e| format!("cloning {}: {e}", upstream.full_name()))?;
        let mut settings = vec![];
        if fork_note.is_some() {
            settings.push(("remote.origin.url", origin_url.clone()));
            settings.push(("remote.upstream.url", upstream_url.clone()));
            settings.push(("remote.upstream.fetch", "+refs/heads/*:refs/remotes/upstream/*".to_owned()));
        }
        let (name, email) = self.commit_identity().await;
        settings.push(("user.name", name.clone()));
        settings.push(("user.email", email.clone()));
        for (key, value) in settings {
            git::set_config(&staged, key, &value).await.map_err(|e| e.to_string())?;
        }
        let base_sha = git::seed_mirror(&session.mirror(&origin), &staged, GIT_TIMEOUT, &context.cancel)
            .await
            .map_err(|e| e.to_string())?;
        let dest = move_into_workspace(&staged, &dest, context).await?;

        let checkout = Checkout {
            dir: dest.clone(),
            upstream: upstream.full_name(),
            upstream_url,
            origin,
            origin_url,
            default_branch: upstream.default_branch.clone(),
            base_sha,
        };
        session.update(|state| state.checkouts.push(checkout));
        let mut text = format!(
            "Cloned {} into {} (default branch `{}`). Commits are authored as {name} <{email}>.",
            upstream.full_name(),
            dest.display(),
            if upstream.default_branch.is_empty() { "none yet" } else { &upstream.default_branch },
        );
        if let Some(note) = fork_note {
            text.push('\n');
            text.push_str(&note);
        }
        text.push_str(
            "\nNext: create a branch (git switch -c <name>), commit your changes, then call create_pull_request.",
        );
        Ok(text)
    }

    /// Forks `upstream` (under the configured organisation or the token's account) and waits, bounded,
    /// for the fork to be ready.
    async fn fork(&self, api: &GitHubApi, upstream: &Repository, context: &ToolContext) -> Result<Repository, String> {
        let organization = self.session.settings.fork_organization.as_deref();
        let fork = api
            .create_fork(&upstream.owner, &upstream.name, organization)
            .await
            .map_err(|e| format!("{e}. Without push access rswe works through a fork, which it could not make"))?;
        // GitHub makes forks in the background: wait until the fork answers with its branches.
        let mut pause = Duration::from_millis(500);
        for _ in 0..10 {
            match api.repository(&fork.owner, &fork.name).await {
                Ok(ready) if !ready.default_branch.is_empty() || upstream.default_branch.is_empty() => {
                    return Ok(ready);
                }
                Ok(_) | Err(crate::api::GitHubError::NotFound { .. }) => {}
                Err(error) => return Err(error.to_string()),
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = context.cancel.cancelled() => return Err("interrupted while waiting for the fork".to_owned()),
            }
            pause = (pause * 2).min(Duration::from_secs(8));
        }
        Err(format!("the fork {} was not ready after a minute; try clone_repository again", fork.full_name()))
    }

    /// The configured commit identity, else the credentials' own.
    async fn commit_identity(&self) -> (String, String) {
        let settings = &self.session.settings;
        let identity = match (&settings.commit_name, &settings.commit_email) {
            (Some(name), Some(email)) => return (name.clone(), email.clone()),
            _ => self.session.auth.identity().await,
        };
        let (name, email) = match identity {
            Ok(identity) => (identity.name, identity.email),
            Err(error) => {
                tracing::warn!(%error, "github: cannot learn the commit identity; using rswe's");
                ("rswe".to_owned(), "rswe@users.noreply.github.com".to_owned())
            }
        };
        (settings.commit_name.clone().unwrap_or(name), settings.commit_email.clone().unwrap_or(email))
    }
}

/// Moves a clone made outside the sandbox to `dest` in the workspace, refusing a destination
/// that leads elsewhere through a link; where it went.
async fn move_into_workspace(staged: &Path, dest: &Path, context: &ToolContext) -> Result<PathBuf, String> {
    let sandbox = &context.sandbox;
    let workspace = sandbox.workspace().to_path_buf();
    let real_workspace = sandbox.resolve(&workspace).await.map_err(|e| e.to_string())?;
    let relative = dest.strip_prefix(&workspace).map_err(|_| format!("{} is not in the workspace", dest.display()))?;
    let real_dest = sandbox.resolve(dest).await.map_err(|e| e.to_string())?;
    if real_dest != real_workspace.join(relative) {
        return Err(format!("{} leads elsewhere through a link: choose another `directory`", dest.display()));
    }
    let moved = |e: std::io::Error| format!("cannot move the clone into {}: {e}", real_dest.display());
    if real_dest == real_workspace {
        // The workspace itself (empty): filled entry by entry, since the sandbox holds on to it.
        for entry in std::fs::read_dir(staged).map_err(moved)? {
            let entry = entry.map_err(moved)?;
            std::fs::rename(entry.path(), real_dest.join(entry.file_name())).map_err(moved)?;
        }
        return Ok(real_dest);
    }
    if let Some(parent) = real_dest.parent() {
        std::fs::create_dir_all(parent).map_err(moved)?;
    }
    match std::fs::symlink_metadata(&real_dest) {
        Ok(meta) if meta.is_dir() && is_empty_dir(&real_dest) => std::fs::remove_dir(&real_dest).map_err(moved)?,
        Ok(_) => return Err(format!("{} already exists: choose another `directory`", real_dest.display())),
        Err(_) => {}
    }
    std::fs::rename(staged, &real_dest).map_err(moved)?;
    Ok(real_dest)
}

/// Where a clone goes: `directory` (inside the workspace, not existing or empty), else the workspace
/// when it is empty, else `<workspace>/<name>`.
fn destination(workspace: &Path, directory: Option<&str>, name: &str) -> Result<PathBuf, String> {
    let dest = match directory.map(str::trim).filter(|d| !d.is_empty()) {
        Some(directory) => {
            let relative = Path::new(directory.strip_prefix(&*workspace.to_string_lossy()).unwrap_or(directory));
            let relative = relative.strip_prefix("/").unwrap_or(relative);
            if relative.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
                return Err(format!("`{directory}` must be a plain path inside the workspace"));
            }
            workspace.join(relative)
        }
        None if is_empty_dir(workspace) => workspace.to_path_buf(),
        None => workspace.join(name),
    };
    if dest.exists() && !is_empty_dir(&dest) {
        return Err(format!("{} already exists and is not empty: choose another `directory`", dest.display()));
    }
    Ok(dest)
}

fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut entries| entries.next().is_none())
}

/// The address git clones from: what the API says, else the usual HTTPS address.
fn clone_url(repository: &Repository, repo: &RepoRef) -> String {
    if repository.clone_url.is_empty() { repo.https_url() } else { repository.clone_url.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_go_to_an_empty_workspace_or_beside_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path();
        assert_eq!(destination(ws, None, "hello").unwrap(), ws);
        std::fs::write(ws.join("notes.txt"), "x").unwrap();
        assert_eq!(destination(ws, None, "hello").unwrap(), ws.join("hello"));
        assert_eq!(destination(ws, Some("src/app"), "hello").unwrap(), ws.join("src/app"));
        assert!(destination(ws, Some("../elsewhere"), "hello").is_err());
        assert!(destination(ws, Some("notes.txt"), "hello").unwrap_err().contains("not empty"));
    }
}
