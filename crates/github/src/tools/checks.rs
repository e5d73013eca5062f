//! `wait_for_checks`: a pull request's CI, waited for with a bound, summed up with the failing jobs'
//! log tails.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use rswe_tools::ToolContext;
use serde::Deserialize;
use serde_json::{Value, json};

use super::GitHubSession;

/// The end of a failing job's log shown, in bytes.
const LOG_TAIL_BYTES: usize = 3000;
/// Failing jobs whose logs are shown.
const MAX_LOGS: usize = 3;
/// How long a pull request with no checks at all is watched for some to appear.
const NO_CHECKS_GRACE: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    pull_request: Value,
    #[serde(default)]
    timeout_minutes: Option<u64>,
}

/// The `wait_for_checks` tool.
pub(super) struct WaitForChecks {
    session: Arc<GitHubSession>,
    schema: Value,
}

impl WaitForChecks {
    pub(super) fn new(session: Arc<GitHubSession>) -> Self {
        let schema = json!({
            "type": "object",
            "properties": {
                "pull_request": {"type": "string", "description": super::comments::ITEM_DESCRIPTION},
                "timeout_minutes": {"type": "integer", "description": "The longest to wait; at most the configured limit"}
            },
            "required": ["pull_request"],
            "additionalProperties": false
        });
        WaitForChecks { session, schema }
    }
}

github_tool!(WaitForChecks, "wait_for_checks", "Wait for a pull request's CI checks on its latest commit to finish, then summarise them, with the end of \
         each failing job's log. Waits at most `timeout_minutes` (bounded by the configured limit).", read_only: true, Input, |tool, input, context| tool.wait(input, context));

impl WaitForChecks {
    async fn wait(&self, input: Input, context: &ToolContext) -> Result<String, String> {
        let session = &self.session;
        let (repo, number) = session.item(&input.pull_request)?;
        let (owner, name) = (repo.owner.as_str(), repo.name.as_str());
        let limit = session.settings.checks_timeout;
        let timeout = input.timeout_minutes.map_or(limit, |m| Duration::from_secs(m.saturating_mul(60)).min(limit));
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        let api = session.auth.api_for(owner, name).await.map_err(|e| e.to_string())?;
        let pull = api.pull_request(owner, name, number).await.map_err(|e| e.to_string())?;
        let sha = pull.head_sha.clone();
        let runs = loop {
            let runs = api.check_runs(owner, name, &sha).await.map_err(|error| match error {
                crate::api::GitHubError::Forbidden { .. } | crate::api::GitHubError::NotFound { .. } => format!(
                    "{error}. Reading check runs needs a classic token with the repo scope or a GitHub App with \
                     Checks: read (fine-grained tokens cannot be given that permission)"
                ),
                error => error.to_string(),
            })?;
            let mut runs = runs;
            runs.extend(statuses_as_runs(&api, owner, name, &sha).await);
            let pending = runs.iter().any(|run| run.status != "completed");
            let waiting_for_any = runs.is_empty() && started.elapsed() < NO_CHECKS_GRACE.min(timeout);
            if !pending && !waiting_for_any {
                break runs;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                let mut text = format!(
                    "The checks of {}#{number} (commit {}) were still running after {} minutes:\n",
                    repo.full_name(),
                    short(&sha),
                    timeout.as_secs() / 60
                );
                list(&mut text, &runs);
                text.push_str("Call wait_for_checks again to keep waiting.");
                return Ok(text);
            }
            let pause = session.poll_interval.min(deadline - now);
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = context.cancel.cancelled() => return Err("interrupted while waiting for the checks".to_owned()),
            }
        };
        if runs.is_empty() {
            return Ok(format!(
                "{}#{number} has no checks on its latest commit {} (none appeared within a minute): the repository may \
                 have no CI for pull requests.",
                repo.full_name(),
                short(&sha)
            ));
        }
        let failed: Vec<_> = runs
            .iter()
            .filter(|run| {
                matches!(run.conclusion.as_deref(), Some("failure" | "timed_out" | "cancelled" | "action_required"))
            })
            .collect();
        let mut text = if failed.is_empty() {
            format!("All {} checks of {}#{number} (commit {}) passed:\n", runs.len(), repo.full_name(), short(&sha))
        } else {
            format!(
                "{} of {} checks of {}#{number} (commit {}) failed:\n",
                failed.len(),
                runs.len(),
                repo.full_name(),
                short(&sha)
            )
        };
        list(&mut text, &runs);
        for run in failed.iter().filter(|run| run.id != STATUS_ID).take(MAX_LOGS) {
            match api.job_log(owner, name, run.id, LOG_TAIL_BYTES).await {
                Ok(log) if !log.trim().is_empty() => {
                    let _ = write!(text, "\nThe end of the log of `{}`:\n```\n{}\n```\n", run.name, log.trim_end());
                }
                Ok(_) => {
                    let _ = writeln!(text, "\n`{}` has no log to show (see {}).", run.name, run.html_url);
                }
                Err(error) => {
                    let _ = writeln!(text, "\nThe log of `{}` could not be read: {error}", run.name);
                }
            }
        }
        Ok(text)
    }
}

/// The id given to commit statuses shown as checks: they have no job, hence no log.
const STATUS_ID: u64 = 0;

/// The commit's statuses (what CI services outside the Checks API report), as checks; none when
/// the token may not read them.
async fn statuses_as_runs(
    api: &crate::api::GitHubApi,
    owner: &str,
    name: &str,
    sha: &str,
) -> Vec<crate::api::CheckRun> {
    let statuses = match api.commit_statuses(owner, name, sha).await {
        Ok(statuses) => statuses,
        Err(error) => {
            tracing::debug!(%error, "github: commit statuses not readable; only check runs are shown");
            return Vec::new();
        }
    };
    statuses
        .into_iter()
        .map(|status| {
            let (state, conclusion) = match status.state.as_str() {
                "pending" => ("in_progress", None),
                "success" => ("completed", Some("success")),
                _ => ("completed", Some("failure")),
            };
            let description = (!status.description.is_empty()).then(|| status.description.clone());
            crate::api::CheckRun {
                id: STATUS_ID,
                name: status.context,
                status: state.to_owned(),
                conclusion: conclusion.map(str::to_owned),
                html_url: status.target_url.clone(),
                details_url: status.target_url,
                title: description,
                summary: None,
            }
        })
        .collect()
}

fn list(text: &mut String, runs: &[crate::api::CheckRun]) {
    for run in runs {
        let state = match (&run.conclusion, run.status.as_str()) {
            (Some(conclusion), _) => conclusion.clone(),
            (None, status) => status.replace('_', " "),
        };
        match (&run.title, run.id == STATUS_ID && state != "success") {
            (Some(title), true) => {
                let _ = writeln!(text, "- {}: {state} ({title}; {})", run.name, run.html_url);
            }
            _ => {
                let _ = writeln!(text, "- {}: {state}", run.name);
            }
        }
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
