//! Conversations on GitHub: `get_pull_request_comments`, `reply_to_review_comment` and `comment`.

use std::fmt::Write as _;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{GitHubSession, shorten};
use crate::marker::session_marker;

/// The most comments of each kind listed (the latest).
const MAX_LISTED: usize = 60;
/// The longest comment shown whole, in characters.
const MAX_COMMENT_CHARS: usize = 2000;
/// The longest comment rswe posts, in characters (GitHub takes 65 536).
const MAX_POST_CHARS: usize = 60_000;

pub(super) const ITEM_DESCRIPTION: &str =
    "A number (in the repository you cloned, or the one this session is about), owner/name#12, or its URL";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListInput {
    pull_request: Value,
}

/// The `get_pull_request_comments` tool.
pub(super) struct GetPullRequestComments {
    session: Arc<GitHubSession>,
    schema: Value,
}

impl GetPullRequestComments {
    pub(super) fn new(session: Arc<GitHubSession>) -> Self {
        let schema = json!({
            "type": "object",
            "properties": {"pull_request": {"type": "string", "description": ITEM_DESCRIPTION}},
            "required": ["pull_request"],
            "additionalProperties": false
        });
        GetPullRequestComments { session, schema }
    }
}

github_tool!(GetPullRequestComments, "get_pull_request_comments", "Read a pull request's reviews, its review comments on the diff (with their ids, to answer with \
         reply_to_review_comment) and its conversation, oldest first.", read_only: true, ListInput, |tool, input, _context| tool.list(&input.pull_request));

impl GetPullRequestComments {
    async fn list(&self, item: &Value) -> Result<String, String> {
        let (repo, number) = self.session.item(item)?;
        let (owner, name) = (repo.owner.as_str(), repo.name.as_str());
        let api = self.session.auth.api_for(owner, name).await.map_err(|e| e.to_string())?;
        let reviews = api.reviews(owner, name, number).await.map_err(|e| e.to_string())?;
        let diff_comments = api.review_comments(owner, name, number).await.map_err(|e| e.to_string())?;
        let conversation = api.issue_comments(owner, name, number).await.map_err(|e| e.to_string())?;

        let mut text = format!("Pull request {}#{number}\n", repo.full_name());
        let reviews: Vec<_> = reviews.iter().filter(|r| !r.body.trim().is_empty() || r.state != "COMMENTED").collect();
        let _ = writeln!(text, "\nReviews ({}):", reviews.len());
        if reviews.is_empty() {
            text.push_str("  none\n");
        }
        for review in tail(&reviews) {
            let _ = writeln!(text, "- @{} {}: {}", review.user, review.state.to_lowercase(), shown(&review.body));
        }
        let _ = writeln!(text, "\nReview comments on the diff ({}):", diff_comments.len());
        if diff_comments.is_empty() {
            text.push_str("  none\n");
        }
        for comment in tail(&diff_comments) {
            let place = match comment.line {
                Some(line) => format!("{}:{line}", comment.path),
                None => comment.path.clone(),
            };
            let reply = comment.in_reply_to_id.map(|id| format!(", in reply to {id}")).unwrap_or_default();
            let _ =
                writeln!(text, "- [id {}] @{} on {place}{reply}: {}", comment.id, comment.user, shown(&comment.body));
        }
        let _ = writeln!(text, "\nConversation ({}):", conversation.len());
        if conversation.is_empty() {
            text.push_str("  none\n");
        }
        for comment in tail(&conversation) {
            let _ = writeln!(text, "- @{}: {}", comment.user, shown(&comment.body));
        }
        Ok(text)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyInput {
    pull_request: Value,
    comment_id: Value,
    body: String,
}

/// The `reply_to_review_comment` tool.
pub(super) struct ReplyToReviewComment {
    session: Arc<GitHubSession>,
    schema: Value,
}

impl ReplyToReviewComment {
    pub(super) fn new(session: Arc<GitHubSession>) -> Self {
        let schema = json!({
            "type": "object",
            "properties": {
                "pull_request": {"type": "string", "description": ITEM_DESCRIPTION},
                "comment_id": {"type": "integer", "description": "The review comment's id, as get_pull_request_comments lists it"},
                "body": {"type": "string", "description": "The reply, in markdown"}
            },
            "required": ["pull_request", "comment_id", "body"],
            "additionalProperties": false
        });
        ReplyToReviewComment { session, schema }
    }
}

github_tool!(ReplyToReviewComment, "reply_to_review_comment", "Answer a review comment on a pull request's diff, in its thread (say what you changed, or why not).", read_only: false, ReplyInput, |tool, input, _context| tool.reply(input));

impl ReplyToReviewComment {
    async fn reply(&self, input: ReplyInput) -> Result<String, String> {
        let (repo, number) = self.session.item(&input.pull_request)?;
        let comment_id = match &input.comment_id {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or("`comment_id` is the number get_pull_request_comments shows as [id …]")?;
        let body = post_body(&self.session, &input.body)?;
        let (owner, name) = (repo.owner.as_str(), repo.name.as_str());
        let api = self.session.auth.api_for(owner, name).await.map_err(|e| e.to_string())?;
        let id =
            api.reply_to_review_comment(owner, name, number, comment_id, &body).await.map_err(|e| e.to_string())?;
        Ok(format!("Replied to review comment {comment_id} on {}#{number} (reply {id}).", repo.full_name()))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentInput {
    issue_or_pull_request: Value,
    body: String,
}

/// The `comment` tool.
pub(super) struct Comment {
    session: Arc<GitHubSession>,
    schema: Value,
}

impl Comment {
    pub(super) fn new(session: Arc<GitHubSession>) -> Self {
        let schema = json!({
            "type": "object",
            "properties": {
                "issue_or_pull_request": {"type": "string", "description": ITEM_DESCRIPTION},
                "body": {"type": "string", "description": "The comment, in markdown"}
            },
            "required": ["issue_or_pull_request", "body"],
            "additionalProperties": false
        });
        Comment { session, schema }
    }
}

github_tool!(Comment, "comment", "Post a comment on an issue or a pull request's conversation. Your final answer is posted for you where \
         the session was asked; use this for anything else worth saying on GitHub.", read_only: false, CommentInput, |tool, input, _context| tool.post(input));

impl Comment {
    async fn post(&self, input: CommentInput) -> Result<String, String> {
        let (repo, number) = self.session.item(&input.issue_or_pull_request)?;
        let body = post_body(&self.session, &input.body)?;
        let (owner, name) = (repo.owner.as_str(), repo.name.as_str());
        let api = self.session.auth.api_for(owner, name).await.map_err(|e| e.to_string())?;
        let id = api.comment(owner, name, number, &body).await.map_err(|e| e.to_string())?;
        Ok(format!("Commented on {}#{number} (comment {id}).", repo.full_name()))
    }
}

/// What rswe posts: the text (redacted, bounded) and the session's marker.
fn post_body(session: &GitHubSession, text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the body is empty: say something".to_owned());
    }
    let text = session.redact(text);
    let text = if text.chars().count() > MAX_POST_CHARS {
        format!("{}\n\n[cut: too long for GitHub]", shorten(&text, MAX_POST_CHARS))
    } else {
        text
    };
    Ok(format!("{text}\n\n{}", session_marker(&session.session_id)))
}

/// A comment on one line of the listing, without rswe's marker.
fn shown(body: &str) -> String {
    let body = match body.find("<!-- rswe:session=") {
        Some(at) => &body[..at],
        None => body,
    };
    let body = body.trim();
    if body.is_empty() { "(no text)".to_owned() } else { shorten(body, MAX_COMMENT_CHARS).replace('\n', "\n    ") }
}

/// The last [`MAX_LISTED`] entries.
fn tail<T>(items: &[T]) -> &[T] {
    &items[items.len().saturating_sub(MAX_LISTED)..]
}
