//! `create_pull_request`: the current branch pushed and a pull request opened for it (one per branch).

use std::sync::Arc;

use rswe_tools::{Tool, ToolContext, ToolOutput, parse_input};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Checkout, GIT_TIMEOUT, GitHubSession, Opened};
use crate::api::NewPullRequest;
use crate::git::{self, PushRequest};
use crate::marker::session_marker;

const DESCRIPTION: &str = "Push the current branch of a cloned repository and open a pull request for it on GitHub. \
Commit your changes on a branch first (not the default branch). Calling it again for the same branch pushes the new \
commits to the pull request already open instead of opening another. Title and body are sent as they are (markdown); \
the issue this session works on is linked for you. `base` is the branch to merge into (the repository's default \
branch unless given). Set `force` only to replace the remote branch after rewriting history.";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    directory: Option<String>,
    #[serde(default)]
    force: bool,
}

/// The `create_pull_request` tool.
pub(super) struct CreatePullRequest {
    session: Arc<GitHubSession>,
    schema: Value,
}

impl CreatePullRequest {
    pub(super) fn new(session: Arc<GitHubSession>) -> Self {
        let schema = json!({
            "type": "object",
            "properties": {
                "title": {"type": "string", "description": "The pull request's title"},
                "body": {"type": "string", "description": "What changed and why, in markdown"},
                "base": {"type": "string", "description": "The branch to merge into; the default branch unless given"},
                "draft": {"type": "boolean", "description": "Open it as a draft"},
                "directory": {"type": "string", "description": "The cloned repository, when several are cloned"},
                "force": {"type": "boolean", "description": "Force-push the branch (after a rebase or an amend)"}
            },
            "required": ["title"],
            "additionalProperties": false
        });
        CreatePullRequest { session, schema }
    }
}

#[async_trait::async_trait]
impl Tool for CreatePullRequest {
    fn name(&self) -> &str {
        "create_pull_request"
    }

    fn description(&self) -> &str {
        DESCRIPTION
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    async fn run(&self, input: Value, context: &ToolContext) -> ToolOutput {
        let input: Input = match parse_input(self.name(), input, &self.schema) {
            Ok(input) => input,
            Err(output) => return output,
        };
        match self.open(input, context).await {
            Ok(text) => self.session.output(&text),
            Err(text) => self.session.error(&text),
        }
    }
}

impl CreatePullRequest {
    async fn open(&self, input: Input, context: &ToolContext) -> Result<String, String> {
        let session = &self.session;
        if input.title.trim().is_empty() {
            return Err("the title is empty: say in a few words what the pull request does".to_owned());
        }
        let checkout = session.checkout(input.directory.as_deref(), context.sandbox.workspace())?;
        let branch = git::current_branch(&checkout.dir).map_err(|e| e.to_string())?.ok_or_else(|| {
            format!("{} is not on a branch: create one (git switch -c <name>) and commit to it", checkout.dir.display())
        })?;
        if !git::valid_branch_name(&branch) {
            return Err(format!("`{branch}` is not a branch name GitHub accepts: rename the branch"));
        }
        let base = input.base.as_deref().map(str::trim).filter(|b| !b.is_empty()).unwrap_or(&checkout.default_branch);
        if branch == base && !checkout.forked() {
            return Err(format!(
                "you are on `{branch}`, the branch the pull request would merge into: create a branch for the change \
                 (git switch -c <name>), then call create_pull_request again"
            ));
        }

        let sha = self.push(&checkout, &branch, input.force, context).await?;
        let (upstream_owner, upstream_name) = split(&checkout.upstream);
        let origin_owner = split(&checkout.origin).0;
        let head = format!("{origin_owner}:{branch}");

        let known = session
            .lock()
            .pulls
            .iter()
            .find(|p| p.repository.eq_ignore_ascii_case(&checkout.upstream) && p.head.eq_ignore_ascii_case(&head))
            .cloned();
        if let Some(opened) = known {
            return Ok(format!(
                "Pushed {} to `{branch}`: pull request #{} ({}) now has the new commits.",
                short(&sha),
                opened.number,
                opened.url
            ));
        }
        let api = session.auth.api_for(upstream_owner, upstream_name).await.map_err(|e| e.to_string())?;
        if let Some(open) =
            api.find_pull_request(upstream_owner, upstream_name, &head).await.map_err(|e| e.to_string())?
        {
            return Ok(format!(
                "Pushed {} to `{branch}`. A pull request is already open for this branch: #{} ({}); it now has the new \
                 commits. To open another pull request, use another branch.",
                short(&sha),
                open.number,
                open.html_url
            ));
        }
        let request = NewPullRequest {
            title: input.title.trim().to_owned(),
            body: self.body(&input.body, &checkout.upstream).await,
            head: if checkout.forked() { head.clone() } else { branch.clone() },
            base: base.to_owned(),
            draft: input.draft,
        };
        let pull = api.create_pull_request(upstream_owner, upstream_name, &request).await.map_err(|e| {
            let text = e.to_string();
            if text.contains("No commits between") {
                format!("{text}. Commit your changes on `{branch}` first")
            } else {
                text
            }
        })?;
        let opened =
            Opened { repository: checkout.upstream.clone(), head, number: pull.number, url: pull.html_url.clone() };
        session.update(|state| state.pulls.push(opened));
        Ok(format!(
            "Opened pull request #{} ({}) from `{}` into `{}` of {}{}.",
            pull.number,
            pull.html_url,
            request.head,
            request.base,
            checkout.upstream,
            if input.draft { " as a draft" } else { "" }
        ))
    }

    /// Pushes `branch` to the checkout's `origin` through the session's mirror; the pushed commit.
    async fn push(
        &self,
        checkout: &Checkout,
        branch: &str,
        force: bool,
        context: &ToolContext,
    ) -> Result<String, String> {
        let session = &self.session;
        let (owner, name) = split(&checkout.origin);
        let token = session.auth.git_token_for(owner, name).await.map_err(|e| e.to_string())?;
        let mirror = session.mirror(checkout);
        git::push_branch(PushRequest {
            workspace_repo: &checkout.dir,
            mirror: &mirror,
            branch,
            remote_url: &checkout.origin_url,
            remote_branch: branch,
            token: Some(&token),
            force,
            timeout: GIT_TIMEOUT,
            cancel: &context.cancel,
        })
        .await
        .map_err(|e| format!("pushing `{branch}` to {}: {e}", checkout.origin))
    }

    /// The body as written, the issue link, the session's link and its hidden marker.
    async fn body(&self, written: &str, repository: &str) -> String {
        let session = &self.session;
        let mut body = written.trim().to_owned();
        if let Some(closes) = session.closes_line(repository).await
            && !links(&body, closes.split_whitespace().last().unwrap_or_default())
        {
            if !body.is_empty() {
                body.push_str("\n\n");
            }
            body.push_str(&closes);
        }
        if let Some(url) = &session.session_url {
            body.push_str(&format!("\n\n---\nOpened by rswe: [session]({url})"));
        }
        body.push_str("\n\n");
        body.push_str(&session_marker(&session.session_id));
        body
    }
}

/// Whether `body` already closes `target` (`#12` or `owner/name#12`) with one of GitHub's keywords.
fn links(body: &str, target: &str) -> bool {
    const KEYWORDS: [&str; 9] =
        ["close", "closes", "closed", "fix", "fixes", "fixed", "resolve", "resolves", "resolved"];
    let body = body.to_lowercase();
    let target = target.to_lowercase();
    KEYWORDS
        .iter()
        .any(|word| body.contains(&format!("{word} {target}")) || body.contains(&format!("{word}: {target}")))
}

fn split(full_name: &str) -> (&str, &str) {
    full_name.split_once('/').unwrap_or((full_name, ""))
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
