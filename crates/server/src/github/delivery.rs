//! From the log to GitHub: what a session says (its messages, its final answers,
//! failures, files) is posted as comments on the issue or pull request of its latest
//! request, in order, once.
//!
//! Each session with a reply target has a worker ([`crate::follow`]). The bus only wakes
//! it; the worker reads the log after the target's `delivered_seq` and records how far it
//! got, so a lagging bus, a GitHub outage or a restart loses and repeats nothing. When
//! GitHub cannot be reached, the worker tries again after a growing pause.

use crate::follow::{Deliver, Pass};
use crate::said::{Said, said};
use rswe_github::GitHubAuth;
use rswe_github::api::GitHubError;
use rswe_github::marker::session_marker;
use rswe_protocol::{Event, SessionId};
use rswe_store::{GitHubReplyTarget, Store};

/// Events read from the log at a time.
const PAGE: u32 = 200;
/// The longest comment posted, in characters (GitHub takes 65 536).
pub(super) const MAX_COMMENT_CHARS: usize = 60_000;

/// How posting a comment went.
pub(super) enum Posted {
    Done,
    /// GitHub refused it for good (a deleted issue, a locked conversation): passed over.
    Refused,
    /// GitHub could not be reached or is busy: try again later.
    Unreachable,
}

#[derive(Clone)]
pub(super) struct Delivery {
    auth: GitHubAuth,
    store: Store,
    /// The web UI's address, for links to sessions.
    public_url: String,
}

impl Deliver for Delivery {
    /// Every session with a reply target.
    async fn sessions(&self) -> Vec<SessionId> {
        match self.store.github_all_reply_targets().await {
            Ok(targets) => targets.into_iter().map(|target| target.session_id).collect(),
            Err(error) => {
                tracing::error!(%error, "GitHub: could not read where sessions answer");
                Vec::new()
            }
        }
    }

    /// Posts every new event of the session to its reply target.
    async fn deliver(&self, session: &SessionId) -> Pass {
        'target: loop {
            let mut target = match self.store.github_reply_target(session).await {
                Ok(Some(target)) => target,
                Ok(None) => return Pass::Done,
                Err(error) => {
                    tracing::error!(%session, %error, "GitHub: could not read where a session answers");
                    return Pass::Unreachable;
                }
            };
            loop {
                let events = match self.store.events(session, target.delivered_seq, PAGE).await {
                    Ok(events) => events,
                    Err(error) => {
                        tracing::error!(%session, %error, "GitHub: could not read a session's log");
                        return Pass::Unreachable;
                    }
                };
                let Some(last) = events.last().map(|event| event.seq) else {
                    return Pass::Done;
                };
                for event in &events {
                    let Some((text, footer)) = self.comment_of(session, event) else { continue };
                    let body = compose(&self.auth, session, &text, footer.as_deref());
                    // A request on another item since the page was read: answer there.
                    if !self.still_target(session, &target).await {
                        continue 'target;
                    }
                    match self.post(&target.repo, target.number, &body).await {
                        Posted::Done | Posted::Refused => {}
                        Posted::Unreachable => {
                            // Recorded up to the event before: the next pass starts with this one.
                            self.record(session, event.seq.saturating_sub(1)).await;
                            return Pass::Unreachable;
                        }
                    }
                    if !self.record(session, event.seq).await {
                        return Pass::Done;
                    }
                }
                // The rest of the page had nothing to post.
                if !self.record(session, last).await {
                    return Pass::Done;
                }
                target.delivered_seq = last;
            }
        }
    }
}

impl Delivery {
    pub(super) fn new(auth: GitHubAuth, store: Store, public_url: String) -> Delivery {
        Delivery { auth, store, public_url }
    }

    /// Whether the session still answers on `target`'s item.
    async fn still_target(&self, session: &SessionId, target: &GitHubReplyTarget) -> bool {
        match self.store.github_reply_target(session).await {
            Ok(Some(now)) => now.repo == target.repo && now.number == target.number,
            _ => true,
        }
    }

    /// Records how far the target was told; `false` when the session no longer answers on
    /// GitHub.
    async fn record(&self, session: &SessionId, seq: u64) -> bool {
        match self.store.github_delivered(session, seq).await {
            Ok(still_bound) => still_bound,
            Err(error) => {
                tracing::error!(%error, "GitHub: could not record a delivery");
                false
            }
        }
    }

    /// The comment an event becomes, if any, and its footer: the agent's messages, its
    /// final answers with a link to the session, failures, and the names of files it sent.
    fn comment_of(&self, session: &SessionId, event: &Event) -> Option<(String, Option<String>)> {
        let link = format!("[View the session]({}/sessions/{session})", self.public_url);
        Some(match said(&event.kind)? {
            Said::Message(text) => (text.to_string(), None),
            Said::Answer(text) => (text, Some(link)),
            Said::Failure(message) => (format!("⚠️ {message}"), None),
            Said::File { path, message } => {
                let name = std::path::Path::new(path)
                    .file_name()
                    .map(|name| name.to_string_lossy().to_string())
                    .unwrap_or_else(|| path.to_string());
                let name = name.replace('`', "'");
                let note = message.map(|message| format!("\n\n{message}")).unwrap_or_default();
                (format!("📎 The agent sent the file `{name}`; it is in the session's workspace ({link}).{note}"), None)
            }
        })
    }

    /// Posts a comment (made with [`compose`]) on an item.
    pub(super) async fn post(&self, repo: &str, number: u64, body: &str) -> Posted {
        let Some((owner, name)) = repo.split_once('/') else {
            tracing::warn!(%repo, "GitHub: not an owner/name; a comment was passed over");
            return Posted::Refused;
        };
        let result = match self.auth.api_for(owner, name).await {
            Ok(api) => api.comment(owner, name, number, body).await.map(|_| ()),
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => Posted::Done,
            Err(error) if is_transient(&error) => {
                tracing::warn!(%repo, number, %error, "GitHub: could not comment; will try again");
                Posted::Unreachable
            }
            Err(error) => {
                tracing::warn!(%repo, number, %error, "GitHub: a comment was refused; passed over");
                Posted::Refused
            }
        }
    }
}

/// A comment of `session`: `text` without secrets, cut so that the whole fits in
/// [`MAX_COMMENT_CHARS`], then `footer` (a link) and the session's hidden marker.
pub(super) fn compose(auth: &GitHubAuth, session: &SessionId, text: &str, footer: Option<&str>) -> String {
    let marker = session_marker(session.as_str());
    let tail = match footer {
        Some(footer) => format!("\n\n{footer}\n\n{marker}"),
        None => format!("\n\n{marker}"),
    };
    let text = cut(&redact(auth, text), MAX_COMMENT_CHARS.saturating_sub(tail.chars().count()));
    format!("{text}{tail}")
}

/// `text` without the tokens the credentials hold or handed out (and anything that looks
/// like a GitHub token).
pub(super) fn redact(auth: &GitHubAuth, text: &str) -> String {
    let secrets = auth.secrets();
    let known: Vec<&str> = secrets.iter().map(String::as_str).collect();
    rswe_github::redact::redact(text, &known)
}

/// `text` cut to at most `max` characters, with a note saying so.
pub(super) fn cut(text: &str, max: usize) -> String {
    const NOTE: &str = "\n\n… (cut: the rest is in the session)";
    if text.chars().count() <= max {
        return text.to_string();
    }
    let keep = max.saturating_sub(NOTE.chars().count());
    let mut out: String = text.chars().take(keep).collect();
    out.push_str(NOTE);
    out
}

/// Whether trying again later may work: GitHub unreachable, busy, or refusing the
/// credentials (which the operator will fix; what the item should hear waits until then).
pub(super) fn is_transient(error: &GitHubError) -> bool {
    matches!(
        error,
        GitHubError::Network { .. }
            | GitHubError::RateLimited { .. }
            | GitHubError::Unauthorized { .. }
            | GitHubError::Config { .. }
    ) || matches!(error, GitHubError::Http { status, .. } if *status >= 500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_comments_are_cut_with_a_note() {
        assert_eq!(cut("short", 10), "short");
        let long = "é".repeat(MAX_COMMENT_CHARS + 10);
        let cut = cut(&long, MAX_COMMENT_CHARS);
        assert_eq!(cut.chars().count(), MAX_COMMENT_CHARS);
        assert!(cut.ends_with("(cut: the rest is in the session)"), "{}", &cut[cut.len() - 60..]);
    }
}
