//! The session service: creates sessions, takes people's messages, interrupts and stops,
//! and runs one task per working session.
//!
//! Every operation is appended to the session's log first; the task that answers it
//! derives everything from the log. So a message posted while the agent works is
//! steering it reads at its next step, and a server killed at any point resumes on its
//! next start from where the log stops.

use crate::bus::{Bus, BusEvent};
use crate::workspace;
use base64::Engine;
use rswe_agent::{Agent, AgentConfig, LiveEvent, LiveSink, SessionLog, TurnEnd, conversation};
use rswe_github::tools::{GitHubSession, SessionContext, origin_in};
use rswe_llm::Providers;
use rswe_mcp::{McpConfig, McpSession, McpSettings};
use rswe_protocol::{ContentBlock, EventKind, ImageSource, SessionId, SessionStatus};
use rswe_sandbox::Sandbox;
use rswe_store::{NewSession, Session, SessionFilter, SessionUpdate, Store, StoreError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Builds a session's sandbox: `(session, session directory, workspace)`.
pub type SandboxFactory = Arc<dyn Fn(&SessionId, &Path, &Path) -> Result<Arc<dyn Sandbox>, String> + Send + Sync>;

/// How the service runs sessions.
#[derive(Clone)]
pub struct ServiceConfig {
    /// Sessions live under `<data_dir>/sessions/<id>`.
    pub data_dir: PathBuf,
    /// Sessions working at once; more wait their turn, first come first served.
    pub max_working: usize,
    /// A session's sandbox is released after this long without work, and made again
    /// (workspace intact) when the session is spoken to.
    pub idle_release: Duration,
    /// The model of a session created without one.
    pub default_model: String,
    pub agent: AgentConfig,
    pub sandbox: SandboxFactory,
    /// How long a repository may take to clone.
    pub clone_timeout: Duration,
    /// How long `stop` and `delete` wait for the agent to reach a safe point.
    pub stop_timeout: Duration,
    /// The MCP servers sessions get.
    pub mcp: McpServiceConfig,
    /// GitHub, when configured: sessions get the GitHub tools.
    pub github: Option<GitHubServiceConfig>,
}

/// What sessions need to work on GitHub.
#[derive(Clone)]
pub struct GitHubServiceConfig {
    pub settings: Arc<rswe_github::GitHubSettings>,
    pub auth: rswe_github::GitHubAuth,
    /// The web UI's address, for links to sessions from pull requests.
    pub public_url: String,
}

impl GitHubServiceConfig {
    /// Checks the credentials' form (a readable App key); calls nothing.
    pub fn new(settings: rswe_github::GitHubSettings, public_url: &str) -> Result<Self, rswe_github::api::GitHubError> {
        let auth = rswe_github::GitHubAuth::new(&settings.api_url, settings.credentials.clone())?;
        Ok(GitHubServiceConfig {
            settings: Arc::new(settings),
            auth,
            public_url: public_url.trim_end_matches('/').to_string(),
        })
    }
}

/// The MCP servers of every session, started in its sandbox (unless trusted) at its
/// first step and stopped with the sandbox.
#[derive(Clone, Default)]
pub struct McpServiceConfig {
    pub servers: McpConfig,
    pub settings: McpSettings,
    /// Whether a repository's own `.mcp.json` is used.
    pub repository_config: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("no session {0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The session's agent did not stop in time for the operation.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A file or image sent with a message.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub name: String,
    pub media_type: String,
    pub data: Vec<u8>,
}

/// A person's message.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub text: String,
    pub attachments: Vec<Attachment>,
    /// Who wrote it, as the channel knows them.
    pub author: Option<String>,
}

/// What [`SessionService::create`] needs.
#[derive(Debug, Clone, Default)]
pub struct CreateSession {
    pub message: NewMessage,
    /// A git URL or a path on the server to clone.
    pub repository: Option<String>,
    /// `provider/id`; the configured default when `None`.
    pub model: Option<String>,
    pub title: Option<String>,
    /// Where the session came from: "web", "api", ...
    pub channel: String,
    /// The GitHub issue or pull request (`owner/name`, number) the session is about, bound to it
    /// before it starts, so its first step already knows.
    pub github_item: Option<(String, u64)>,
}

/// Images the models read; other attachments become files in the workspace.
const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Where attachments land, relative to the workspace.
pub const INBOX: &str = ".rswe/inbox";

/// What the service knows of a session in memory.
struct Slot {
    /// Present while a task runs for the session (queued or working).
    run: Option<RunHandle>,
    /// A message arrived while the task was finishing: run the agent again.
    rerun: bool,
    runtime: Option<Runtime>,
    last_active: Instant,
}

/// What a session holds while it may work: its sandbox, its MCP servers and its GitHub
/// side (tokens minted for it, the repositories it cloned).
#[derive(Clone)]
struct Runtime {
    sandbox: Arc<dyn Sandbox>,
    mcp: McpSession,
    github: Option<Arc<GitHubSession>>,
}

impl Runtime {
    async fn release(self) {
        self.mcp.shutdown().await;
        self.sandbox.shutdown().await;
    }
}

#[derive(Clone)]
struct RunHandle {
    /// Cancelled to interrupt the agent at its next safe point.
    interrupt: CancellationToken,
    /// Cancelled when the task has ended.
    done: CancellationToken,
    /// Whether the task holds a working permit (is not queued).
    started: Arc<std::sync::atomic::AtomicBool>,
}

/// Frees a session's slot when its task ends in any way.
struct RunGuard {
    service: SessionService,
    id: SessionId,
    done: CancellationToken,
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!(session = %self.id, "the session's task panicked; a new message starts it again");
        }
        self.done.cancel();
        let mut slots = self.service.slots();
        if let Some(slot) = slots.get_mut(&self.id)
            && slot.run.as_ref().is_some_and(|run| run.done.is_cancelled())
        {
            slot.run = None;
            slot.last_active = Instant::now();
        }
    }
}

impl Slot {
    fn new() -> Self {
        Slot { run: None, rerun: false, runtime: None, last_active: Instant::now() }
    }
}

struct Inner {
    store: Store,
    providers: Providers,
    config: ServiceConfig,
    bus: Bus,
    slots: Mutex<HashMap<SessionId, Slot>>,
    permits: Arc<Semaphore>,
    /// Cancelled when the server shuts down: no new work starts.
    closing: CancellationToken,
    /// Cancelled when the shutdown's grace is over: tasks still working end where they
    /// are (the log holds everything up to there).
    aborting: CancellationToken,
    tasks: tokio_util::task::TaskTracker,
    /// Deliveries of attachments, one at a time (they are rare; two at once could hand
    /// the same file over twice).
    delivering: tokio::sync::Mutex<()>,
}

/// The sessions of this server. Cheap to clone.
#[derive(Clone)]
pub struct SessionService {
    inner: Arc<Inner>,
}

/// Where a session stands in the scheduler, beyond its stored status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Activity {
    /// No task runs for the session.
    Resting,
    /// Waiting for a free working slot.
    Queued,
    /// The agent is working.
    Running,
}

impl SessionService {
    pub fn new(store: Store, providers: Providers, config: ServiceConfig, bus: Bus) -> Self {
        let permits = Arc::new(Semaphore::new(config.max_working.max(1)));
        SessionService {
            inner: Arc::new(Inner {
                store,
                providers,
                config,
                bus,
                slots: Mutex::new(HashMap::new()),
                permits,
                closing: CancellationToken::new(),
                aborting: CancellationToken::new(),
                tasks: tokio_util::task::TaskTracker::new(),
                delivering: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn bus(&self) -> &Bus {
        &self.inner.bus
    }

    /// Cancelled when the server begins to shut down; live streams end on it.
    pub fn closing(&self) -> CancellationToken {
        self.inner.closing.clone()
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    /// The session's directory: workspace, home, staged attachments.
    pub fn session_dir(&self, id: &SessionId) -> PathBuf {
        self.inner.config.data_dir.join("sessions").join(id.as_str())
    }

    pub fn workspace(&self, id: &SessionId) -> PathBuf {
        self.session_dir(id).join("workspace")
    }

    /// Whether a task runs for the session and whether it is queued.
    pub fn activity(&self, id: &SessionId) -> Activity {
        let slots = self.slots();
        match slots.get(id).and_then(|slot| slot.run.as_ref()) {
            None => Activity::Resting,
            Some(run) if run.started.load(std::sync::atomic::Ordering::Relaxed) => Activity::Running,
            Some(_) => Activity::Queued,
        }
    }

    /// Sessions with a task (running or queued), and those holding a sandbox.
    pub fn counts(&self) -> (usize, usize, usize) {
        let slots = self.slots();
        let mut running = 0;
        let mut queued = 0;
        let mut sandboxes = 0;
        for slot in slots.values() {
            if let Some(run) = &slot.run {
                if run.started.load(std::sync::atomic::Ordering::Relaxed) {
                    running += 1;
                } else {
                    queued += 1;
                }
            }
            sandboxes += usize::from(slot.runtime.is_some());
        }
        (running, queued, sandboxes)
    }

    /// Creates a session with its first message and starts it.
    pub async fn create(&self, request: CreateSession) -> Result<Session, ServiceError> {
        self.check_open()?;
        let model = request.model.filter(|m| !m.trim().is_empty()).unwrap_or(self.inner.config.default_model.clone());
        if let Err(error) = self.inner.providers.model(&model).await {
            return Err(ServiceError::Invalid(format!("model {model}: {error}")));
        }
        check_message(&request.message)?;
        let repository = request.repository.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
        if let Some(repository) = &repository {
            workspace::check_repository(repository).map_err(ServiceError::Invalid)?;
        }
        // Untitled sessions are named after their task until the agent names them.
        let title = request
            .title
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .or_else(|| title_from(&request.message.text));
        let session = self
            .inner
            .store
            .create_session(NewSession { id: None, title, repository, model, channel: request.channel })
            .await?;
        if let Some((repo, number)) = &request.github_item
            && let Err(error) = self.inner.store.github_bind_item(repo, *number, &session.id, true).await
        {
            let _ = self.inner.store.delete_session(&session.id).await;
            return Err(error.into());
        }
        if let Err(error) = self.post_message(&session.id, request.message).await {
            // A session without its task is no session: leave nothing behind.
            if let Err(cleanup) = self.inner.store.delete_session(&session.id).await {
                tracing::warn!(session = %session.id, error = %cleanup, "could not remove a session that failed to start");
            }
            let _ = std::fs::remove_dir_all(self.session_dir(&session.id));
            return Err(error);
        }
        Ok(self.inner.store.session(&session.id).await?.unwrap_or(session))
    }

    /// Posts a person's message. An idle session wakes; a working one reads it at its
    /// next step. Returns the message's seq.
    pub async fn post_message(&self, id: &SessionId, message: NewMessage) -> Result<u64, ServiceError> {
        self.check_open()?;
        check_message(&message)?;
        self.existing(id).await?;
        let mut content = Vec::new();
        if !message.text.trim().is_empty() {
            content.push(ContentBlock::text(message.text.clone()));
        }
        let mut files = Vec::new();
        for attachment in &message.attachments {
            if IMAGE_TYPES.contains(&attachment.media_type.as_str()) {
                content.push(ContentBlock::Image {
                    source: ImageSource {
                        media_type: attachment.media_type.clone(),
                        data: base64::engine::general_purpose::STANDARD.encode(&attachment.data),
                    },
                });
            } else {
                files.push(attachment);
            }
        }
        if !files.is_empty() {
            let names = workspace::stage(&self.session_dir(id), &self.workspace(id), &files)
                .map_err(|e| ServiceError::Invalid(format!("cannot store the attachments: {e}")))?;
            // A working session gets them now, before it reads the message.
            let sandbox = self.slots().get(id).and_then(|slot| slot.runtime.as_ref().map(|r| r.sandbox.clone()));
            if let Some(sandbox) = sandbox {
                let _delivering = self.inner.delivering.lock().await;
                workspace::deliver_staged(&self.session_dir(id), sandbox.as_ref())
                    .await
                    .map_err(|e| ServiceError::Invalid(format!("cannot deliver the attachments: {e}")))?;
            }
            let list: Vec<String> = names
                .iter()
                .zip(&files)
                .map(|(name, f)| format!("- {INBOX}/{name} ({} bytes)", f.data.len()))
                .collect();
            content.push(ContentBlock::text(format!("[Attached files, in the workspace:\n{}]", list.join("\n"))));
        }
        // The status first: a crash after it and before the message leaves a session
        // that resumes, finds nothing to answer, and rests.
        self.inner
            .store
            .update_session(id, SessionUpdate { status: Some(SessionStatus::Working), ..Default::default() })
            .await?;
        let event = self.inner.store.append(id, EventKind::UserMessage { content, author: message.author }).await?;
        self.inner.bus.publish(id, BusEvent::Live(LiveEvent::Logged(event.clone())));
        self.wake(id);
        Ok(event.seq)
    }

    /// Interrupts the agent at its next safe point. The session stays; a message wakes it.
    pub async fn interrupt(&self, id: &SessionId, by: Option<String>) -> Result<(), ServiceError> {
        self.existing(id).await?;
        let run = {
            let mut slots = self.slots();
            let slot = slots.entry(id.clone()).or_insert_with(Slot::new);
            slot.rerun = false;
            slot.run.clone()
        };
        let Some(run) = run else { return Ok(()) };
        let event = self.inner.store.append(id, EventKind::Interrupted { by }).await?;
        self.inner.bus.publish(id, BusEvent::Live(LiveEvent::Logged(event)));
        run.interrupt.cancel();
        Ok(())
    }

    /// Stops the session: interrupts the agent, waits for it, releases the sandbox and
    /// marks the session stopped. A later message starts it again.
    pub async fn stop(&self, id: &SessionId, by: Option<String>) -> Result<(), ServiceError> {
        self.interrupt(id, by.clone()).await?;
        self.wait_until_rested(id).await?;
        let runtime = self.slots().get_mut(id).and_then(|slot| slot.runtime.take());
        if let Some(runtime) = runtime {
            runtime.release().await;
        }
        let reason = by.map(|by| format!("stopped by {by}"));
        let event =
            self.inner.store.append(id, EventKind::StatusChanged { status: SessionStatus::Stopped, reason }).await?;
        self.inner.bus.publish(id, BusEvent::Live(LiveEvent::Logged(event)));
        Ok(())
    }

    /// Stops the session and removes it: its log, its row, its workspace.
    pub async fn delete(&self, id: &SessionId) -> Result<(), ServiceError> {
        self.existing(id).await?;
        let run = {
            let mut slots = self.slots();
            slots.get_mut(id).and_then(|slot| {
                slot.rerun = false;
                slot.run.clone()
            })
        };
        if let Some(run) = run {
            run.interrupt.cancel();
        }
        self.wait_until_rested(id).await?;
        let runtime = self.slots().remove(id).and_then(|slot| slot.runtime);
        if let Some(runtime) = runtime {
            runtime.release().await;
        }
        self.inner.store.delete_session(id).await?;
        let dir = self.session_dir(id);
        if dir.exists()
            && let Err(error) = std::fs::remove_dir_all(&dir)
        {
            tracing::warn!(session = %id, %error, "could not remove the session's directory");
        }
        self.inner.bus.publish(id, BusEvent::Deleted);
        Ok(())
    }

    /// Wakes every session a previous run left working. Sessions whose log awaits
    /// nothing (the answer was complete) are set to rest instead. Returns how many woke.
    pub async fn resume_all(&self) -> Result<usize, ServiceError> {
        let mut woke = 0;
        let mut filter = SessionFilter { status: Some(SessionStatus::Working), limit: 500, ..Default::default() };
        // Collected first: waking changes the listing.
        let mut working = Vec::new();
        loop {
            let page = self.inner.store.list_sessions(filter.clone()).await?;
            working.extend(page.sessions.into_iter().map(|s| s.id));
            match page.next_cursor {
                Some(cursor) => filter.before = Some(cursor),
                None => break,
            }
        }
        // A message whose wake was lost (the agent's last status landed between the
        // message's status and the message itself, and then the process died).
        for id in self.inner.store.sessions_with_unanswered_message().await? {
            tracing::info!(session = %id, "answering a message left unanswered");
            self.wake(&id);
            woke += 1;
        }
        for id in working {
            let events = self.inner.store.events(&id, 0, u32::MAX).await?;
            if conversation::awaits_model(&events) {
                tracing::info!(session = %id, "resuming a session that was working");
                self.wake(&id);
                woke += 1;
            } else {
                let rest = match events.iter().rev().find_map(|e| match &e.kind {
                    EventKind::AssistantMessage { .. } => Some(SessionStatus::Waiting),
                    _ => None,
                }) {
                    Some(status) => status,
                    None => SessionStatus::Idle,
                };
                let event =
                    self.inner.store.append(&id, EventKind::StatusChanged { status: rest, reason: None }).await?;
                self.inner.bus.publish(&id, BusEvent::Live(LiveEvent::Logged(event)));
            }
        }
        Ok(woke)
    }

    /// Releases the sandboxes of sessions that have rested longer than `idle_release`,
    /// until the service closes. Run it as a task.
    pub async fn release_idle_sandboxes(&self) {
        let every = (self.inner.config.idle_release / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
        loop {
            tokio::select! {
                () = self.inner.closing.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            let idle: Vec<(SessionId, Runtime)> = {
                let mut slots = self.slots();
                slots
                    .iter_mut()
                    .filter(|(_, slot)| {
                        slot.run.is_none() && slot.last_active.elapsed() >= self.inner.config.idle_release
                    })
                    .filter_map(|(id, slot)| slot.runtime.take().map(|runtime| (id.clone(), runtime)))
                    .collect()
            };
            for (id, runtime) in idle {
                tracing::info!(session = %id, "releasing an idle sandbox and its MCP servers");
                runtime.release().await;
            }
        }
    }

    /// Stops taking work, gives working agents `grace` to end their turn, then ends every
    /// task where it is. What the agents did so far is in the log; sessions still working
    /// resume on the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.closing.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(grace, self.inner.tasks.wait()).await.is_err() {
            tracing::info!("sessions still working will resume on the next start");
            self.inner.aborting.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.inner.tasks.wait()).await;
        }
        let runtimes: Vec<Runtime> = self.slots().values_mut().filter_map(|slot| slot.runtime.take()).collect();
        futures::future::join_all(runtimes.into_iter().map(Runtime::release)).await;
    }

    fn check_open(&self) -> Result<(), ServiceError> {
        if self.inner.closing.is_cancelled() { Err(ServiceError::ShuttingDown) } else { Ok(()) }
    }

    async fn existing(&self, id: &SessionId) -> Result<Session, ServiceError> {
        self.inner.store.session(id).await?.ok_or_else(|| ServiceError::NotFound(id.to_string()))
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<SessionId, Slot>> {
        self.inner.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits (at most `stop_timeout`) until no task runs for the session.
    async fn wait_until_rested(&self, id: &SessionId) -> Result<(), ServiceError> {
        let done = self.slots().get(id).and_then(|slot| slot.run.as_ref().map(|run| run.done.clone()));
        if let Some(done) = done
            && tokio::time::timeout(self.inner.config.stop_timeout, done.cancelled()).await.is_err()
        {
            tracing::warn!(session = %id, "the agent did not reach a safe point in time");
            return Err(ServiceError::Busy(format!(
                "session {id} did not stop within {}s; it has been interrupted, try again in a moment",
                self.inner.config.stop_timeout.as_secs()
            )));
        }
        Ok(())
    }

    /// Makes sure a task answers the session's log.
    fn wake(&self, id: &SessionId) {
        if self.inner.closing.is_cancelled() {
            return;
        }
        let run = {
            let mut slots = self.slots();
            let slot = slots.entry(id.clone()).or_insert_with(Slot::new);
            slot.last_active = Instant::now();
            if slot.run.is_some() {
                slot.rerun = true;
                return;
            }
            let run = RunHandle {
                interrupt: CancellationToken::new(),
                done: CancellationToken::new(),
                started: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            };
            slot.run = Some(run.clone());
            run
        };
        let service = self.clone();
        let id = id.clone();
        self.inner.tasks.spawn(async move {
            // Whatever ends the task (its end, the shutdown's abort, a panic), the slot
            // is freed so that the next message starts a new one.
            let _guard = RunGuard { service: service.clone(), id: id.clone(), done: run.done.clone() };
            tokio::select! {
                () = service.session_task(&id, run) => {}
                () = service.inner.aborting.cancelled() => {}
            }
        });
    }

    /// One session's task: waits for a working permit, then runs the agent until the log
    /// awaits nothing more.
    async fn session_task(&self, id: &SessionId, mut run: RunHandle) {
        loop {
            let permit = tokio::select! {
                permit = self.inner.permits.clone().acquire_owned() => permit,
                () = run.interrupt.cancelled() => {
                    // Interrupted while queued: the session rests, unless a message came
                    // after the interrupt.
                    self.set_status(id, SessionStatus::Idle, Some("interrupted".into())).await;
                    match self.next_run(id, &run) {
                        Some(next) => {
                            run = next;
                            continue;
                        }
                        None => return,
                    }
                }
                // Queued work waits for the next start.
                () = self.inner.closing.cancelled() => return,
            };
            let Ok(_permit) = permit else { return };
            run.started.store(true, std::sync::atomic::Ordering::Relaxed);
            loop {
                if let Err(error) = self.run_agent(id, &run.interrupt).await {
                    tracing::error!(session = %id, error = %error, "the session failed");
                    self.fail(id, "internal", &error).await;
                }
                match self.next_run(id, &run) {
                    Some(next) => run = next,
                    None => return,
                }
            }
        }
    }

    /// After a run: a new run handle when a message arrived meanwhile, else `None` with
    /// the slot freed.
    fn next_run(&self, id: &SessionId, run: &RunHandle) -> Option<RunHandle> {
        let mut slots = self.slots();
        let slot = slots.get_mut(id)?;
        slot.last_active = Instant::now();
        if slot.rerun && !self.inner.closing.is_cancelled() {
            slot.rerun = false;
            let next = RunHandle { interrupt: CancellationToken::new(), ..run.clone() };
            if let Some(current) = slot.run.as_mut() {
                current.interrupt = next.interrupt.clone();
            }
            return Some(next);
        }
        slot.run = None;
        None
    }

    async fn set_status(&self, id: &SessionId, status: SessionStatus, reason: Option<String>) {
        match self.inner.store.append(id, EventKind::StatusChanged { status, reason }).await {
            Ok(event) => self.inner.bus.publish(id, BusEvent::Live(LiveEvent::Logged(event))),
            Err(error) => tracing::error!(session = %id, %error, "could not record a status"),
        }
    }

    async fn fail(&self, id: &SessionId, class: &str, message: &str) {
        for kind in [
            EventKind::Error { class: class.into(), message: message.into() },
            EventKind::StatusChanged { status: SessionStatus::Failed, reason: Some(message.into()) },
        ] {
            match self.inner.store.append(id, kind).await {
                Ok(event) => self.inner.bus.publish(id, BusEvent::Live(LiveEvent::Logged(event))),
                Err(error) => tracing::error!(session = %id, %error, "could not record a failure"),
            }
        }
    }

    async fn run_agent(&self, id: &SessionId, interrupt: &CancellationToken) -> Result<(), String> {
        let Some(session) = self.inner.store.session(id).await.map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let workspace = self.workspace(id);
        let session_dir = self.session_dir(id);
        if !workspace.exists() {
            let timeout = self.inner.config.clone_timeout;
            match workspace::prepare(&session_dir, &workspace, session.repository.as_deref(), timeout, interrupt).await
            {
                Ok(workspace::Prepared::Ready) => {}
                Ok(workspace::Prepared::Interrupted) => {
                    self.set_status(id, SessionStatus::Idle, Some("interrupted".into())).await;
                    return Ok(());
                }
                Err(message) => {
                    self.fail(id, "workspace", &message).await;
                    return Ok(());
                }
            }
        }
        let model = match self.inner.providers.model(&session.model).await {
            Ok(model) => model,
            Err(error) => {
                self.fail(id, "model", &format!("model {}: {error}", session.model)).await;
                return Ok(());
            }
        };
        let Runtime { sandbox, mcp, github } = self.runtime(id, &session_dir, &workspace).await?;
        {
            let _delivering = self.inner.delivering.lock().await;
            workspace::deliver_staged(&session_dir, sandbox.as_ref())
                .await
                .map_err(|e| format!("cannot deliver the attachments: {e}"))?;
        }
        let bus = self.inner.bus.clone();
        let session_id = id.clone();
        let live: LiveSink = Arc::new(move |event: LiveEvent| bus.publish(&session_id, BusEvent::Live(event)));
        let log: Arc<dyn SessionLog> = Arc::new(self.inner.store.clone());
        let mut tools = rswe_tools::builtin_tools();
        let mut source: Arc<dyn rswe_tools::ToolSource> = Arc::new(mcp);
        if let Some(github) = github {
            for tool in github.tools() {
                tools.register(tool);
            }
            // Tokens never reach the sandbox; should one turn up anyway, nobody sees it.
            let filter: rswe_tools::OutputFilter = Arc::new(move |text: &str| github.redact(text));
            tools.filter_output(filter.clone());
            source = Arc::new(rswe_tools::FilteredSource::new(source, filter));
        }
        let agent = Agent::new(id.clone(), model, tools, sandbox, log, live, self.inner.config.agent.clone())
            .map_err(|e| e.to_string())?
            .with_tool_source(source);
        match agent.run(interrupt.clone()).await.map_err(|e| e.to_string())? {
            TurnEnd::Failed { class, message } => {
                tracing::info!(session = %id, %class, %message, "the agent stopped on a failure");
            }
            end => tracing::debug!(session = %id, ?end, "the turn ended"),
        }
        Ok(())
    }

    /// The session's sandbox and MCP servers, made when it has none (the servers start
    /// at the agent's first step).
    async fn runtime(&self, id: &SessionId, session_dir: &Path, workspace: &Path) -> Result<Runtime, String> {
        if let Some(runtime) = self.slots().get(id).and_then(|slot| slot.runtime.clone()) {
            return Ok(runtime);
        }
        let sandbox = (self.inner.config.sandbox)(id, session_dir, workspace)?;
        let mcp = &self.inner.config.mcp;
        let mcp = McpSession::for_workspace(&mcp.servers, sandbox.clone(), mcp.settings, mcp.repository_config).await;
        let github = match &self.inner.config.github {
            Some(config) => Some(self.github_session(id, session_dir, config).await),
            None => None,
        };
        let runtime = Runtime { sandbox, mcp, github };
        if let Some(slot) = self.slots().get_mut(id) {
            slot.runtime = Some(runtime.clone());
        }
        Ok(runtime)
    }
}

impl SessionService {
    /// The text of the session's first message.
    async fn first_message(&self, id: &SessionId) -> Option<String> {
        let events = self.inner.store.events(id, 0, 20).await.ok()?;
        events.into_iter().find_map(|event| match event.kind {
            EventKind::UserMessage { content, .. } => Some(
                content
                    .iter()
                    .filter_map(|block| match block {
                        ContentBlock::Text { text } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            _ => None,
        })
    }

    /// The GitHub side of a session: its own token cache, its state beside (not in) the workspace,
    /// and the issue or pull request it came from.
    async fn github_session(
        &self,
        id: &SessionId,
        session_dir: &Path,
        config: &GitHubServiceConfig,
    ) -> Arc<GitHubSession> {
        let origin = match self.inner.store.github_origin(id).await {
            Ok(origin) => origin,
            Err(error) => {
                tracing::warn!(session = %id, %error, "cannot read where the session came from on GitHub");
                None
            }
        };
        let host = rswe_github::reference::web_host(&config.settings.api_url).unwrap_or_else(|| "github.com".into());
        let from_github = origin.is_some();
        let origin = match origin {
            Some(item) => item.repo.split_once('/').map(|(owner, name)| rswe_github::reference::ItemRef {
                repo: rswe_github::reference::RepoRef { host: host.clone(), owner: owner.into(), name: name.into() },
                number: item.number,
                kind: rswe_github::reference::ItemKind::Issue,
            }),
            // A session started elsewhere works on the issue or pull request its task links to.
            None => self.first_message(id).await.and_then(|task| origin_in(&task, &config.settings.api_url)),
        };
        GitHubSession::new(
            config.auth.for_session(),
            config.settings.clone(),
            SessionContext {
                session_id: id.to_string(),
                state_dir: session_dir.join("github"),
                origin,
                session_url: Some(format!("{}/sessions/{id}", config.public_url)),
                only_origin_repository: from_github,
            },
        )
    }
}

/// The first line of a task, shortened to a title.
fn title_from(task: &str) -> Option<String> {
    const MAX_CHARS: usize = 80;
    let line = task.lines().map(str::trim).find(|line| !line.is_empty())?;
    if line.chars().count() <= MAX_CHARS {
        return Some(line.to_string());
    }
    let cut: String = line.chars().take(MAX_CHARS - 1).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head).trim_end();
    Some(format!("{cut}…"))
}

fn check_message(message: &NewMessage) -> Result<(), ServiceError> {
    if message.text.trim().is_empty() && message.attachments.is_empty() {
        return Err(ServiceError::Invalid("the message is empty: say what to do".into()));
    }
    for attachment in &message.attachments {
        workspace::check_file_name(&attachment.name).map_err(ServiceError::Invalid)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::title_from;

    #[test]
    fn a_task_names_its_session() {
        assert_eq!(title_from("\n  Fix the login test\nIt fails since Monday").as_deref(), Some("Fix the login test"));
        let long = "word ".repeat(40);
        let title = title_from(&long).unwrap();
        assert!(title.ends_with('…') && title.chars().count() <= 80, "{title}");
        assert_eq!(title_from("  \n "), None);
    }
}
