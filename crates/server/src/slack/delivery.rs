//! From the log to the threads: what a session says (its messages, its final answers,
//! errors, files) is posted to every thread bound to it, in order, once.
//!
//! Each session with threads has a worker. The bus only wakes it; the worker reads the
//! log after each thread's `delivered_seq` and records every event posted (or passed
//! over), so a lagging bus, a Slack outage or a restart loses and repeats nothing.

use crate::bus::BusMessage;
use crate::service::SessionService;
use rswe_protocol::{ContentBlock, Event, EventKind, SessionId};
use rswe_slack::api::{SlackApi, SlackError};
use rswe_slack::mrkdwn::{MAX_MESSAGE_CHARS, split_message, to_mrkdwn};
use rswe_store::{SlackThread, Store};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

/// Events read from the log at a time.
const PAGE: u32 = 200;
/// The largest file uploaded to Slack.
const MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;

/// What an event becomes in a thread.
enum Post {
    Text(String),
    File { path: PathBuf, comment: Option<String> },
}

#[derive(Clone)]
pub(super) struct Delivery {
    api: SlackApi,
    store: Store,
    service: SessionService,
    /// A wake-up channel per session with threads.
    workers: Arc<Mutex<HashMap<SessionId, mpsc::Sender<()>>>>,
}

impl Delivery {
    pub(super) fn new(api: SlackApi, store: Store, service: SessionService) -> Delivery {
        Delivery { api, store, service, workers: Arc::default() }
    }

    /// Wakes the workers of sessions as their events arrive, until `closing`.
    pub(super) fn follow(&self, mut bus: broadcast::Receiver<Arc<BusMessage>>, closing: CancellationToken) {
        let delivery = self.clone();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    message = bus.recv() => message,
                    () = closing.cancelled() => return,
                };
                match message {
                    Ok(message) => delivery.kick_if_bound(&message.session).await,
                    // Fell behind: every worker reads the log anyway.
                    Err(broadcast::error::RecvError::Lagged(_)) => delivery.catch_up().await,
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// Wakes every session with threads (at start, and after the bus lagged).
    pub(super) async fn catch_up(&self) {
        match self.store.slack_all_threads().await {
            Ok(threads) => {
                for thread in threads {
                    self.kick(&thread.session_id);
                }
            }
            Err(error) => tracing::error!(%error, "Slack: could not read the bound threads"),
        }
    }

    async fn kick_if_bound(&self, session: &SessionId) {
        let known = self.workers.lock().unwrap_or_else(PoisonError::into_inner).contains_key(session);
        if known {
            self.kick(session);
            return;
        }
        if matches!(self.store.slack_threads_of(session).await, Ok(threads) if !threads.is_empty()) {
            self.kick(session);
        }
    }

    /// Makes the session's worker read the log (starting the worker if needed).
    pub(super) fn kick(&self, session: &SessionId) {
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(worker) = workers.get(session) {
            // Full: a pass is pending already and will see everything.
            if worker.try_send(()).is_ok() || !worker.is_closed() {
                return;
            }
        }
        let (sender, mut wakes) = mpsc::channel(1);
        let _ = sender.try_send(());
        workers.insert(session.clone(), sender);
        let delivery = self.clone();
        let session = session.clone();
        tokio::spawn(async move {
            while wakes.recv().await.is_some() {
                delivery.deliver(&session).await;
            }
        });
    }

    /// Posts every new event of the session to each of its threads.
    async fn deliver(&self, session: &SessionId) {
        let threads = match self.store.slack_threads_of(session).await {
            Ok(threads) => threads,
            Err(error) => {
                tracing::error!(%session, %error, "Slack: could not read a session's threads");
                return;
            }
        };
        for thread in threads {
            self.deliver_to(session, thread).await;
        }
    }

    async fn deliver_to(&self, session: &SessionId, mut thread: SlackThread) {
        loop {
            let events = match self.store.events(session, thread.delivered_seq, PAGE).await {
                Ok(events) => events,
                Err(error) => {
                    tracing::error!(%session, %error, "Slack: could not read a session's log");
                    return;
                }
            };
            if events.is_empty() {
                return;
            }
            for event in &events {
                if let Some(post) = self.post_of(session, event)
                    && !self.send(&thread, post).await
                {
                    // Slack is unreachable: the next wake-up tries again from here.
                    return;
                }
                thread.delivered_seq = event.seq;
                if let Err(error) = self.store.slack_delivered(&thread.channel, &thread.thread_ts, event.seq).await {
                    tracing::error!(%error, "Slack: could not record a delivery");
                    return;
                }
            }
        }
    }

    /// What the thread is told of an event, if anything: the agent's messages, its final
    /// answer (an answer without tool calls), errors, and files it sent.
    fn post_of(&self, session: &SessionId, event: &Event) -> Option<Post> {
        match &event.kind {
            EventKind::AgentMessage { text } => Some(Post::Text(text.clone())),
            EventKind::AssistantMessage { content, .. } => {
                let calls_tools = content.iter().any(|block| matches!(block, ContentBlock::ToolUse { .. }));
                let text: Vec<&str> = content
                    .iter()
                    .filter_map(|block| match block {
                        ContentBlock::Text { text } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                let text = text.join("\n\n");
                (!calls_tools && !text.trim().is_empty()).then_some(Post::Text(text))
            }
            EventKind::Error { message, .. } => Some(Post::Text(format!(":warning: {message}"))),
            EventKind::FileSent { path, message, .. } => {
                let workspace = self.service.workspace(session);
                Some(Post::File { path: within(&workspace, Path::new(path))?, comment: message.clone() })
            }
            _ => None,
        }
    }

    /// Sends a post; `false` when Slack could not be reached (try again later). A post
    /// Slack refuses for good (a deleted channel) is logged and passed over.
    async fn send(&self, thread: &SlackThread, post: Post) -> bool {
        let result = match post {
            Post::Text(text) => self.post_text(&thread.channel, &thread.thread_ts, &text).await,
            Post::File { path, comment } => self.upload(thread, &path, comment.as_deref()).await,
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

    async fn post_text(&self, channel: &str, thread_ts: &str, markdown: &str) -> Result<(), SlackError> {
        for part in split_message(&to_mrkdwn(markdown), MAX_MESSAGE_CHARS) {
            self.api.post_message(channel, Some(thread_ts), &part).await?;
        }
        Ok(())
    }

    async fn upload(&self, thread: &SlackThread, path: &Path, comment: Option<&str>) -> Result<(), SlackError> {
        let name = path.file_name().map(|name| name.to_string_lossy().to_string()).unwrap_or_else(|| "file".into());
        let bytes = match read_bounded(path).await {
            Ok(bytes) => bytes,
            Err(why) => {
                let text = format!(":warning: The file {name} could not be sent: {why}");
                return self.post_text(&thread.channel, &thread.thread_ts, &text).await;
            }
        };
        self.api.upload_file(&thread.channel, Some(&thread.thread_ts), &name, bytes, comment).await
    }

    /// Posts rswe's own reply (command answers, refusals), written in mrkdwn already;
    /// failures are logged, never raised: the web view has everything.
    pub(super) async fn post(&self, channel: &str, thread_ts: &str, mrkdwn: &str) {
        for part in split_message(mrkdwn, MAX_MESSAGE_CHARS) {
            if let Err(error) = self.api.post_message(channel, Some(thread_ts), &part).await {
                tracing::warn!(%channel, %error, "Slack: could not post a reply");
                return;
            }
        }
    }

    /// Uploads a file made on the spot (a transcript).
    pub(super) async fn upload_bytes(&self, channel: &str, thread_ts: &str, name: &str, bytes: Vec<u8>) {
        if let Err(error) = self.api.upload_file(channel, Some(thread_ts), name, bytes, None).await {
            tracing::warn!(%channel, %error, "Slack: could not upload a file");
        }
    }
}

/// Whether trying again later may work.
fn is_transient(error: &SlackError) -> bool {
    matches!(error, SlackError::Network { .. } | SlackError::RateLimited { .. })
        || matches!(error, SlackError::Http { status, .. } if *status >= 500)
}

/// `path` if it lies in the workspace (the agent names files by their absolute path in
/// its sandbox, which is the same on the host).
fn within(workspace: &Path, path: &Path) -> Option<PathBuf> {
    let workspace = workspace.canonicalize().ok()?;
    let path = path.canonicalize().ok()?;
    path.starts_with(&workspace).then_some(path)
}

async fn read_bounded(path: &Path) -> Result<Vec<u8>, String> {
    let metadata = tokio::fs::metadata(path).await.map_err(|error| error.to_string())?;
    if metadata.len() > MAX_UPLOAD_BYTES {
        return Err(format!("it is larger than {} MB", MAX_UPLOAD_BYTES / (1024 * 1024)));
    }
    tokio::fs::read(path).await.map_err(|error| error.to_string())
}
