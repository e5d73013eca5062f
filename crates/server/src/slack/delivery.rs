//! From the log to the threads: what a session says (its messages, its final answers,
//! errors, files) is posted to every thread bound to it, in order, once.
//!
//! Each session with threads has a worker ([`crate::follow`]). The bus only wakes it; the
//! worker reads the log after each thread's `delivered_seq` and records how far it got, so
//! a lagging bus, a Slack outage or a restart loses and repeats nothing. When Slack cannot
//! be reached, the worker tries again after a growing pause.

use crate::follow::{Deliver, Pass};
use crate::said::{Said, said};
use crate::service::SessionService;
use rswe_protocol::{Event, SessionId};
use rswe_slack::api::{SlackApi, SlackError};
use rswe_slack::mrkdwn::{MAX_MESSAGE_CHARS, split_message, to_mrkdwn};
use rswe_store::{SlackThread, Store};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Events read from the log at a time.
const PAGE: u32 = 200;
/// The largest file uploaded to Slack.
const MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;

/// What an event becomes in a thread.
enum Post {
    Text(String),
    File {
        path: PathBuf,
        comment: Option<String>,
    },
    /// The agent named a file rswe will not send; the thread is told why.
    Refused(String),
}

#[derive(Clone)]
pub(super) struct Delivery {
    api: SlackApi,
    store: Store,
    service: SessionService,
}

impl Deliver for Delivery {
    /// Every session with threads.
    async fn sessions(&self) -> Vec<SessionId> {
        match self.store.slack_all_threads().await {
            Ok(threads) => threads.into_iter().map(|thread| thread.session_id).collect(),
            Err(error) => {
                tracing::error!(%error, "Slack: could not read the bound threads");
                Vec::new()
            }
        }
    }

    /// Posts every new event of the session to each of its threads.
    async fn deliver(&self, session: &SessionId) -> Pass {
        let threads = match self.store.slack_threads_of(session).await {
            Ok(threads) => threads,
            Err(error) => {
                tracing::error!(%session, %error, "Slack: could not read a session's threads");
                return Pass::Unreachable;
            }
        };
        let mut pass = Pass::Done;
        for thread in threads {
            if let Pass::Unreachable = self.deliver_to(session, thread).await {
                pass = Pass::Unreachable;
            }
        }
        pass
    }
}

impl Delivery {
    pub(super) fn new(api: SlackApi, store: Store, service: SessionService) -> Delivery {
        Delivery { api, store, service }
    }

    async fn deliver_to(&self, session: &SessionId, mut thread: SlackThread) -> Pass {
        loop {
            let events = match self.store.events(session, thread.delivered_seq, PAGE).await {
                Ok(events) => events,
                Err(error) => {
                    tracing::error!(%session, %error, "Slack: could not read a session's log");
                    return Pass::Unreachable;
                }
            };
            let Some(last) = events.last().map(|event| event.seq) else {
                return Pass::Done;
            };
            for event in &events {
                let Some(post) = self.post_of(session, event).await else { continue };
                if !self.send(&thread, post).await {
                    // Recorded up to the event before: the next pass starts with this one.
                    self.record(session, &thread, event.seq.saturating_sub(1)).await;
                    return Pass::Unreachable;
                }
                if !self.record(session, &thread, event.seq).await {
                    return Pass::Done;
                }
            }
            // The rest of the page had nothing to post.
            if !self.record(session, &thread, last).await {
                return Pass::Done;
            }
            thread.delivered_seq = last;
        }
    }

    /// Records how far the thread was told; `false` when it no longer follows the session.
    async fn record(&self, session: &SessionId, thread: &SlackThread, seq: u64) -> bool {
        match self.store.slack_delivered(&thread.channel, &thread.thread_ts, session, seq).await {
            Ok(still_bound) => still_bound,
            Err(error) => {
                tracing::error!(%error, "Slack: could not record a delivery");
                false
            }
        }
    }

    /// What the thread is told of an event, if anything: the agent's messages, its final
    /// answer (an answer without tool calls), errors, and files it sent.
    async fn post_of(&self, session: &SessionId, event: &Event) -> Option<Post> {
        match said(&event.kind)? {
            Said::Message(text) => Some(Post::Text(to_mrkdwn(text))),
            Said::Answer(text) => Some(Post::Text(to_mrkdwn(&text))),
            Said::Failure(message) => Some(Post::Text(format!(":warning: {}", to_mrkdwn(message)))),
            Said::File { path, message } => {
                let workspace = self.service.workspace(session);
                let path = PathBuf::from(path);
                let comment = message.map(to_mrkdwn);
                let checked =
                    tokio::task::spawn_blocking(move || read_workspace_file(&workspace, &path, 0).map(|_| path)).await;
                Some(match checked {
                    Ok(Ok(path)) => Post::File { path, comment },
                    Ok(Err(why)) => Post::Refused(why),
                    Err(error) => Post::Refused(error.to_string()),
                })
            }
        }
    }

    /// Sends a post; `false` when Slack could not be reached (try again later). A post
    /// Slack refuses for good (a deleted channel) is logged and passed over.
    async fn send(&self, thread: &SlackThread, post: Post) -> bool {
        let result = match post {
            Post::Text(text) => self.post_parts(&thread.channel, &thread.thread_ts, &text).await,
            Post::File { path, comment } => self.upload(thread, path, comment).await,
            Post::Refused(why) => {
                let text = format!(":warning: A file the agent sent could not be shared: {why}");
                self.post_parts(&thread.channel, &thread.thread_ts, &rswe_slack::mrkdwn::escape(&text)).await
            }
        };
        match result {
            Ok(()) => true,
            Err(error) if is_transient(&error) => {
                tracing::warn!(channel = %thread.channel, %error, "Slack: could not post; will try again");
                false
            }
            Err(error) => {
                tracing::warn!(channel = %thread.channel, %error, "Slack: a post was refused; passed over");
                true
            }
        }
    }

    async fn post_parts(&self, channel: &str, thread_ts: &str, mrkdwn: &str) -> Result<(), SlackError> {
        for part in split_message(mrkdwn, MAX_MESSAGE_CHARS) {
            self.api.post_message(channel, Some(thread_ts), &part).await?;
        }
        Ok(())
    }

    async fn upload(&self, thread: &SlackThread, path: PathBuf, comment: Option<String>) -> Result<(), SlackError> {
        let name = path.file_name().map(|name| name.to_string_lossy().to_string()).unwrap_or_else(|| "file".into());
        let workspace = self.service.workspace(&thread.session_id);
        let read = tokio::task::spawn_blocking(move || read_workspace_file(&workspace, &path, MAX_UPLOAD_BYTES)).await;
        let bytes = match read {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(why)) => {
                let text = rswe_slack::mrkdwn::escape(&format!(":warning: The file {name} could not be sent: {why}"));
                return self.post_parts(&thread.channel, &thread.thread_ts, &text).await;
            }
            Err(error) => return Err(SlackError::Config(error.to_string())),
        };
        self.api.upload_file(&thread.channel, Some(&thread.thread_ts), &name, bytes, comment.as_deref()).await
    }

    /// Posts rswe's own reply (command answers, refusals), written in mrkdwn already;
    /// failures are logged, never raised: the web view has everything.
    pub(super) async fn post(&self, channel: &str, thread_ts: &str, mrkdwn: &str) {
        if let Err(error) = self.post_parts(channel, thread_ts, mrkdwn).await {
            tracing::warn!(%channel, %error, "Slack: could not post a reply");
        }
    }

    /// Uploads a file made on the spot (a transcript); `false` when it failed.
    pub(super) async fn upload_bytes(&self, channel: &str, thread_ts: &str, name: &str, bytes: Vec<u8>) -> bool {
        match self.api.upload_file(channel, Some(thread_ts), name, bytes, None).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%channel, %error, "Slack: could not upload a file");
                false
            }
        }
    }
}

/// Whether trying again later may work: Slack unreachable, busy, or refusing the token
/// (which the operator will fix; what the thread should hear waits until then).
fn is_transient(error: &SlackError) -> bool {
    matches!(error, SlackError::Network { .. } | SlackError::RateLimited { .. })
        || matches!(error, SlackError::Http { status, .. } if *status >= 500)
        || error.is_auth()
        || matches!(error.api_error(), Some("ratelimited" | "missing_scope" | "internal_error" | "fatal_error"))
}

/// Reads a file of a session's workspace as an untrusted one (the agent controls the
/// workspace): a regular file that really lies in the workspace when opened (symbolic
/// links resolved, and the opened file checked, so a link swapped in between changes
/// nothing), read without blocking on a FIFO, at most `max` bytes (0: only checked).
/// Blocking. Err says why not.
pub(super) fn read_workspace_file(workspace: &Path, path: &Path, max: u64) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let outside = || "it is not in the session's workspace".to_string();
    let workspace = workspace.canonicalize().map_err(|_| outside())?;
    let resolved = path.canonicalize().map_err(|error| format!("it cannot be found ({error})"))?;
    if !resolved.starts_with(&workspace) {
        return Err(outside());
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits() | nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(&resolved)
        .map_err(|error| format!("it cannot be opened ({error})"))?;
    // What was opened, wherever links pointed meanwhile.
    let opened = std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file)))
        .map_err(|_| outside())?;
    if !opened.starts_with(&workspace) {
        return Err(outside());
    }
    let metadata = file.metadata().map_err(|error| error.to_string())?;
    if !metadata.is_file() {
        return Err("it is not a regular file".into());
    }
    if metadata.len() > MAX_UPLOAD_BYTES.max(max) {
        return Err(format!("it is larger than {} MB", MAX_UPLOAD_BYTES / (1024 * 1024)));
    }
    let mut bytes = Vec::new();
    if max > 0 {
        file.take(max + 1).read_to_end(&mut bytes).map_err(|error| error.to_string())?;
        if bytes.len() as u64 > max {
            return Err(format!("it is larger than {} MB", max / (1024 * 1024)));
        }
    }
    Ok(bytes)
}
