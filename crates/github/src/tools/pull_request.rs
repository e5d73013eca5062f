//! `create_pull_request`: the current branch pushed and a pull request opened for it (one per branch).

use std::sync::Arc;

use rswe_tools::ToolContext;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Checkout, GIT_TIMEOUT, GitHubSession, Opened};
use crate::api::NewPullRequest;
use crate::git::{self, PushRequest};
use crate::marker::session_marker;
use rswe_sandbox::ExecRequest;

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

github_tool!(CreatePullRequest, "create_pull_request", DESCRIPTION, read_only: false, Input, |tool, input, context| tool.open(input, context));

impl CreatePullRequest {
    async fn open(&self, input: Input, context: &ToolContext) -> Result<String, String> {
        let session = &self.session;
        if input.title.trim().is_empty() {
            return Err("the title is empty: say in a few words what the pull request does".to_owned());
        }
        let checkout = session.checkout(input.directory.as_deref(), context.sandbox.workspace())?;
        let branch = current_branch(&checkout, context).await?;
        let base = input.base.as_deref().map(str::trim).filter(|b| !b.is_empty()).unwrap_or(&checkout.default_branch);
        if !checkout.forked() && (branch == base || branch == checkout.default_branch) {
            return Err(format!(
                "you are on `{branch}`, a branch people merge into: create a branch for the change \
                 (git switch -c <name>), then call create_pull_request again"
            ));
        }
        let (upstream_owner, upstream_name) = split(&checkout.upstream);
        let api = session.auth.api_for(upstream_owner, upstream_name).await.map_err(|e| e.to_string())?;
        self.may_push(&checkout, &branch, input.force, &api, context).await?;

        let sha = self.push(&checkout, &branch, input.force, context).await?;
        let origin_owner = split(&checkout.origin).0;
        let head = format!("{origin_owner}:{branch}");
        let known = session
            .lock()
            .pulls
            .iter()
            .find(|p| p.repository.eq_ignore_ascii_case(&checkout.upstream) && p.head.eq_ignore_ascii_case(&head))
            .cloned();
        if let Some(opened) = known {
            let open = api.pull_request(upstream_owner, upstream_name, opened.number).await.map(|pull| pull.state);
            if open.as_deref().is_ok_and(|state| state == "open") {
                return Ok(format!(
                    "Pushed {} to `{branch}`: pull request #{} ({}) now has the new commits.",
                    short(&sha),
                    opened.number,
                    opened.url
                ));
            }
        }
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

    /// Refuses pushes that could overwrite other people's work: a branch that already exists on
    /// `origin` and that this session did not create (unless it is the head of the pull request the
    /// session is about), and a force-push to anything but a branch this session created.
    async fn may_push(
        &self,
        checkout: &Checkout,
        branch: &str,
        force: bool,
        api: &crate::api::GitHubApi,
        context: &ToolContext,
    ) -> Result<(), String> {
        let session = &self.session;
        let key = format!("{}:{branch}", checkout.origin.to_lowercase());
        if session.lock().pushed.contains(&key) {
            return Ok(());
        }
        if force {
            return Err(format!(
                "`force` replaces a branch's history: it is only for branches this session created, and `{branch}` \
                 is not one. Push to a new branch instead"
            ));
        }
        let (owner, name) = split(&checkout.origin);
        let token = session.auth.git_token_for(owner, name).await.map_err(|e| e.to_string())?;
        let exists =
            git::remote_branch_exists(&checkout.origin_url, branch, Some(&token), GIT_TIMEOUT, &context.cancel)
                .await
                .map_err(|e| format!("looking for `{branch}` on {}: {e}", checkout.origin))?;
        match self.origin_head(checkout, api).await {
            Some((repo, head)) if head == branch && repo.eq_ignore_ascii_case(&checkout.origin) => return Ok(()),
            // The pull request's branch lives in someone else's fork: pushing a namesake here would
            // open a second pull request instead of updating it.
            Some((repo, head)) if head == branch => {
                return Err(format!(
                    "the pull request's branch `{head}` lives in {repo}, which rswe cannot push to: say what should \
                     change in a comment instead, or push your work to a new branch for a new pull request"
                ));
            }
            _ if !exists => return Ok(()),
            _ => {}
        }
        Err(format!(
            "{} already has a branch `{branch}` that this session did not create: rename yours \
             (git branch -m <new-name>) and call create_pull_request again",
            checkout.origin
        ))
    }

    /// The head (`owner/name`, branch) of the pull request the session is about, when it is one in
    /// the checkout's repository.
    async fn origin_head(&self, checkout: &Checkout, api: &crate::api::GitHubApi) -> Option<(String, String)> {
        let origin = self.session.origin.as_ref()?;
        if !origin.repo.full_name().eq_ignore_ascii_case(&checkout.upstream) {
            return None;
        }
        let pull = api.pull_request(&origin.repo.owner, &origin.repo.name, origin.number).await.ok()?;
        Some((pull.head_repository?, pull.head_ref))
    }

    /// Pushes `branch` to the checkout's `origin`. The commits leave the sandbox as a bundle made
    /// inside it, so rswe never runs git in the agent's repository; the push goes through the
    /// session's mirror, which holds the history the clone started from. The pushed commit.
    async fn push(
        &self,
        checkout: &Checkout,
        branch: &str,
        force: bool,
        context: &ToolContext,
    ) -> Result<String, String> {
        let session = &self.session;
        let bundle = bundle_branch(checkout, branch, context).await?;
        let staging = session.state_dir.join("staging");
        std::fs::create_dir_all(&staging).map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
        let file = tempfile::Builder::new()
            .prefix("push-")
            .suffix(".bundle")
            .tempfile_in(&staging)
            .map_err(|e| format!("cannot write the bundle: {e}"))?;
        std::fs::write(file.path(), &bundle).map_err(|e| format!("cannot write the bundle: {e}"))?;
        let (owner, name) = split(&checkout.origin);
        let token = session.auth.git_token_for(owner, name).await.map_err(|e| e.to_string())?;
        let mirror = session.mirror(&checkout.origin);
        let sha = git::push_branch(PushRequest {
            workspace_repo: file.path(),
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
        .map_err(|e| format!("pushing `{branch}` to {}: {e}", checkout.origin))?;
        let key = format!("{}:{branch}", checkout.origin.to_lowercase());
        session.update(|state| {
            if !state.pushed.contains(&key) {
                state.pushed.push(key);
            }
        });
        Ok(sha)
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

/// The branch the checkout is on, as git in the sandbox says.
async fn current_branch(checkout: &Checkout, context: &ToolContext) -> Result<String, String> {
    let request = ExecRequest::new("git symbolic-ref --quiet --short HEAD").cwd(&checkout.dir);
    let outcome = context.sandbox.exec(request, None, context.cancel.clone()).await.map_err(|e| e.to_string())?;
    let branch = outcome.stdout.head.trim().to_owned();
    if !outcome.success() || branch.is_empty() {
        return Err(format!(
            "{} is not on a branch: create one (git switch -c <name>) and commit to it",
            checkout.dir.display()
        ));
    }
    if !git::valid_branch_name(&branch) {
        return Err(format!("`{branch}` is not a branch name GitHub accepts: rename the branch"));
    }
    Ok(branch)
}

/// The commits of `branch` not in the clone's starting point, as a git bundle made by git in the
/// sandbox and read back through it.
async fn bundle_branch(checkout: &Checkout, branch: &str, context: &ToolContext) -> Result<Vec<u8>, String> {
    let name = format!(".git/rswe-push-{}.bundle", std::process::id());
    let path = checkout.dir.join(&name);
    // Without the starting point (a rewritten history, an empty repository) the whole branch goes.
    let command = "git bundle create --quiet \"$BUNDLE\" \"refs/heads/$BRANCH\" ${BASE:+\"^$BASE\"} 2>/dev/null \
                   || git bundle create --quiet \"$BUNDLE\" \"refs/heads/$BRANCH\"";
    let request = ExecRequest::new(command)
        .cwd(&checkout.dir)
        .env("BUNDLE", name.as_str())
        .env("BRANCH", branch)
        .env("BASE", checkout.base_sha.clone().unwrap_or_default());
    let outcome = context.sandbox.exec(request, None, context.cancel.clone()).await.map_err(|e| e.to_string())?;
    let read = if outcome.success() {
        context.sandbox.read_file(&path).await.map_err(|e| format!("cannot read the bundle of `{branch}`: {e}"))
    } else {
        Err(format!("cannot bundle `{branch}` for the push: {}", outcome.stderr.head.trim()))
    };
    if let Ok(resolved) = context.sandbox.resolve(&path).await {
        let _ = std::fs::remove_file(resolved);
    }
    read
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
