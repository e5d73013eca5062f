//! The turn loop: model → tool calls → results, until the model ends its turn.
//!
//! Everything that matters is appended to the session log before anyone is told of it;
//! the conversation sent to the model is derived from the log at every step, so a crash
//! at any point loses nothing and a restart continues where the log stops.

use crate::context::{ContextInput, ContextPolicy, EconomySettings, RswePolicy, Shaped, estimate_tokens};
use crate::conversation::{self, INTERRUPTED_RESULT, SKIPPED_RESULT};
use crate::knowledge::{self, Instructions};
use crate::log::{LogError, SessionLog};
use crate::prompt::{self, PromptContext};
use futures::StreamExt;
use rswe_llm::{
    ErrorClass, LlmError, Model, ModelEvent, ModelRequest, StopReason, StreamEvent, SystemBlock, ThinkingConfig,
};
use rswe_protocol::{ContentBlock, Event, EventKind, SessionId, SessionStatus, ToolResultContent};
use rswe_tools::{ToolContext, ToolEffect, ToolOutput, ToolProgress, ToolRegistry, ToolSource};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Limits and habits of the turn loop.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Model answers per session before the agent stops and says so.
    pub max_steps: Option<u32>,
    /// Dollars per session before the agent stops and says so.
    pub max_cost_usd: Option<f64>,
    /// Read-only tool calls run at the same time, at most this many.
    pub max_parallel_tools: usize,
    pub thinking: Option<ThinkingConfig>,
    /// The first output limit; raised (doubling, up to the model's maximum) when an
    /// answer stops on it.
    pub initial_max_tokens: u32,
    pub max_token_raises: u32,
    /// Consecutive failed model requests of one kind before the turn stops.
    pub circuit_breaker: u32,
    /// The wait before trying a failed model request again (times the failure count).
    pub failure_backoff: Duration,
    /// The same call with the same result this many times in a row earns a nudge…
    pub repeat_nudge: u32,
    /// …and this many a stop.
    pub repeat_stop: u32,
    pub instructions_budget_bytes: usize,
    pub forge: bool,
    pub network: bool,
    /// How the context is managed (bounds, masking, compaction).
    pub context: EconomySettings,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            max_steps: Some(200),
            max_cost_usd: None,
            max_parallel_tools: 4,
            thinking: None,
            initial_max_tokens: 16_384,
            max_token_raises: 2,
            circuit_breaker: 3,
            failure_backoff: Duration::from_secs(5),
            repeat_nudge: 4,
            repeat_stop: 6,
            instructions_budget_bytes: knowledge::DEFAULT_BUDGET_BYTES,
            forge: false,
            network: true,
            context: EconomySettings::default(),
        }
    }
}

/// What people watching a session see besides the log: the answer as it streams, and
/// tools as they run. None of it is needed to resume.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// An event was persisted.
    Logged(Event),
    /// A piece of the model's answer.
    ModelDelta(StreamEvent),
    /// The model request failed and is being retried; what streamed since is void.
    ModelRetrying {
        attempt: u32,
        delay: Duration,
        error: String,
    },
    /// A model request started, with the prompt's estimated size and the window.
    StepStarted {
        step: u32,
        context_tokens: u64,
        context_window: u32,
    },
    ToolStarted {
        tool_use_id: String,
        name: String,
        input: Value,
    },
    ToolProgress(ToolProgress),
}

pub type LiveSink = Arc<dyn Fn(LiveEvent) + Send + Sync>;

/// How a turn ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEnd {
    /// The model ended its turn; its last text.
    Finished {
        text: String,
    },
    /// Nothing awaited a response.
    Idle,
    Interrupted,
    /// A step or cost budget was reached.
    BudgetReached {
        reason: String,
    },
    /// The agent could not go on (model failures, a loop).
    Failed {
        class: String,
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("the system prompt template failed: {0}")]
    Prompt(#[from] minijinja::Error),
}

/// One session's agent.
pub struct Agent {
    session: SessionId,
    model: Model,
    /// The built-in tools.
    tools: ToolRegistry,
    /// Tools from elsewhere (MCP servers), asked for at the start of each turn.
    source: Option<Arc<dyn ToolSource>>,
    sandbox: Arc<dyn rswe_sandbox::Sandbox>,
    log: Arc<dyn SessionLog>,
    live: LiveSink,
    config: AgentConfig,
    system_prompt: String,
    instructions: Mutex<Instructions>,
    policy: Mutex<RswePolicy>,
}

/// What the next step does.
enum Plan {
    Request(ModelRequest),
    Compact { request: ModelRequest, keep_first: usize, until_seq: u64, tokens_before: u64 },
}

/// A tool call of the model: id, name, input.
type Call = (String, String, Value);

/// What the loop keeps between steps.
struct TurnState {
    /// The tools of this turn: the built-in ones and the sourced ones.
    tools: ToolRegistry,
    events: BTreeMap<u64, Event>,
    synced: u64,
    steps: u32,
    cost: f64,
    max_tokens: u32,
    token_raises: u32,
    failures: (Option<ErrorClass>, u32),
    last_call: Option<(String, u32)>,
    /// A compaction was forced after the provider refused the prompt as too large.
    compaction_retried: bool,
    /// The agent was told the context is filling up.
    warned_near_limit: bool,
}

impl TurnState {
    fn events(&self) -> Vec<Event> {
        self.events.values().cloned().collect()
    }

    fn add(&mut self, event: Event) {
        self.events.insert(event.seq, event);
    }
}

impl Agent {
    pub fn new(
        session: SessionId,
        model: Model,
        tools: ToolRegistry,
        sandbox: Arc<dyn rswe_sandbox::Sandbox>,
        log: Arc<dyn SessionLog>,
        live: LiveSink,
        config: AgentConfig,
    ) -> Result<Self, AgentError> {
        let workspace = sandbox.workspace().to_path_buf();
        let system_prompt = prompt::system_prompt(&PromptContext {
            os: std::env::consts::OS.to_string(),
            workspace: workspace.display().to_string(),
            date: prompt::today(),
            tools: tools.names(),
            forge: config.forge,
            network: config.network,
        })?;
        let instructions = knowledge::gather(&workspace, &workspace, config.instructions_budget_bytes);
        let policy = Mutex::new(RswePolicy::new(config.context.clone()));
        Ok(Agent {
            session,
            model,
            tools,
            source: None,
            sandbox,
            log,
            live,
            config,
            system_prompt,
            instructions: Mutex::new(instructions),
            policy,
        })
    }

    /// Adds tools from elsewhere (MCP servers) to the built-in ones.
    pub fn with_tool_source(mut self, source: Arc<dyn ToolSource>) -> Self {
        self.source = Some(source);
        self
    }

    pub fn session(&self) -> &SessionId {
        &self.session
    }

    /// The built-in tools and the source's current ones. What the person should know (a
    /// tool server that did not start) is logged as an error event; the turn goes on.
    async fn tools_for_turn(&self, state: &mut TurnState, interrupt: &CancellationToken) -> Result<(), AgentError> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        let sourced = source.prepare(interrupt).await;
        for notice in sourced.notices {
            self.append(state, EventKind::Error { class: "tools".into(), message: notice }).await?;
        }
        let mut tools = self.tools.clone();
        for tool in sourced.tools {
            if self.tools.get(tool.name()).is_some() {
                tracing::warn!(session = %self.session, tool = tool.name(), "a sourced tool has a built-in tool's name; ignored");
                continue;
            }
            tools.register(tool);
        }
        state.tools = tools;
        Ok(())
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    async fn append(&self, state: &mut TurnState, kind: EventKind) -> Result<Event, AgentError> {
        let event = self.log.append(&self.session, kind).await?;
        state.add(event.clone());
        (self.live)(LiveEvent::Logged(event.clone()));
        Ok(event)
    }

    /// Reads what others appended (people's messages, interrupts) since the last sync.
    async fn sync(&self, state: &mut TurnState) -> Result<Vec<Event>, AgentError> {
        let fresh = self.log.events_after(&self.session, state.synced).await?;
        let mut new = Vec::new();
        for event in fresh {
            state.synced = state.synced.max(event.seq);
            if !state.events.contains_key(&event.seq) {
                new.push(event.clone());
                state.add(event);
            }
        }
        Ok(new)
    }

    /// Works until the model ends its turn, the person interrupts, or a limit is hit.
    /// Starts by repairing the log: tool calls left without a result (a crash, a kill)
    /// are answered as interrupted.
    pub async fn run(&self, interrupt: CancellationToken) -> Result<TurnEnd, AgentError> {
        let mut state = TurnState {
            tools: self.tools.clone(),
            events: BTreeMap::new(),
            synced: 0,
            steps: 0,
            cost: 0.0,
            max_tokens: self.config.initial_max_tokens,
            token_raises: 0,
            failures: (None, 0),
            last_call: None,
            compaction_retried: false,
            warned_near_limit: false,
        };
        self.sync(&mut state).await?;
        let events = state.events();
        for (tool_use_id, name) in conversation::dangling_tool_calls(&events) {
            tracing::info!(session = %self.session, %tool_use_id, "answering a tool call left without a result");
            let kind = tool_result(&tool_use_id, &name, INTERRUPTED_RESULT, true, 0);
            self.append(&mut state, kind).await?;
        }
        for event in state.events.values() {
            if let EventKind::AssistantMessage { cost_usd, .. } = &event.kind {
                state.steps += 1;
                state.cost += cost_usd.unwrap_or(0.0);
            }
        }
        if !conversation::awaits_model(&state.events()) {
            return Ok(TurnEnd::Idle);
        }
        self.set_status(&mut state, SessionStatus::Working, None).await?;
        self.tools_for_turn(&mut state, &interrupt).await?;
        let end = self.turn(&mut state, &interrupt).await?;
        let (status, reason) = match &end {
            TurnEnd::Finished { .. } => (SessionStatus::Waiting, None),
            TurnEnd::Idle => (SessionStatus::Idle, None),
            TurnEnd::Interrupted => (SessionStatus::Idle, Some("interrupted".to_string())),
            TurnEnd::BudgetReached { reason } => (SessionStatus::Idle, Some(reason.clone())),
            TurnEnd::Failed { message, .. } => (SessionStatus::Failed, Some(message.clone())),
        };
        self.set_status(&mut state, status, reason).await?;
        Ok(end)
    }

    async fn set_status(
        &self,
        state: &mut TurnState,
        status: SessionStatus,
        reason: Option<String>,
    ) -> Result<(), AgentError> {
        self.append(state, EventKind::StatusChanged { status, reason }).await.map(|_| ())
    }

    async fn turn(&self, state: &mut TurnState, interrupt: &CancellationToken) -> Result<TurnEnd, AgentError> {
        loop {
            self.sync(state).await?;
            if interrupt.is_cancelled() {
                return Ok(TurnEnd::Interrupted);
            }
            if let Some(reason) = self.budget_reached(state) {
                self.append(state, EventKind::Error { class: "budget".into(), message: reason.clone() }).await?;
                return Ok(TurnEnd::BudgetReached { reason });
            }
            self.refresh_instructions(state).await?;

            // People's messages logged after this point arrive while the model answers.
            let request_seq = state.events.keys().next_back().copied();
            let request = match self.plan(state)? {
                Plan::Request(request) => request,
                Plan::Compact { request, keep_first, until_seq, tokens_before } => {
                    match self.compact(state, &request, keep_first, until_seq, tokens_before, interrupt).await? {
                        Some(end) => return Ok(end),
                        None => {
                            // The prompt cache starts over after a compaction: a cheap moment
                            // to take up changed tool lists.
                            self.tools_for_turn(state, interrupt).await?;
                            continue;
                        }
                    }
                }
            };
            let context_tokens =
                estimate_tokens(&request.system) + estimate_tokens(&request.tools) + estimate_tokens(&request.messages);
            let context_window = self.model.info().context_window;
            (self.live)(LiveEvent::StepStarted { step: state.steps + 1, context_tokens, context_window });
            if !state.warned_near_limit
                && context_tokens as f64 > f64::from(context_window) * self.config.context.warn_at
            {
                state.warned_near_limit = true;
                let note = format!(
                    "[rswe: the context holds about {}k of {}k tokens. Older tool outputs will be summarised soon: \
                     keep the todo list current and note key findings in your messages.]",
                    context_tokens / 1000,
                    context_window / 1000
                );
                self.append(
                    state,
                    EventKind::UserMessage { content: vec![ContentBlock::text(note)], author: Some("rswe".into()) },
                )
                .await?;
                continue;
            }
            let live = self.live.clone();
            let mut observer = move |event: ModelEvent| match event {
                ModelEvent::Delta(delta) => live(LiveEvent::ModelDelta(delta)),
                ModelEvent::Retrying { attempt, delay, error } => {
                    live(LiveEvent::ModelRetrying { attempt, delay, error: error.to_string() })
                }
            };
            let result = tokio::select! {
                result = self.model.send(&request, &mut observer) => result,
                _ = interrupt.cancelled() => return Ok(TurnEnd::Interrupted),
            };
            let response = match result {
                Ok(response) => response,
                Err(error) => match self.model_failed(state, error, interrupt).await? {
                    Some(end) => return Ok(end),
                    None => continue,
                },
            };
            state.failures = (None, 0);
            state.compaction_retried = false;
            let model_max = self.model.info().max_output_tokens;
            if response.stop_reason == StopReason::MaxTokens
                && state.token_raises < self.config.max_token_raises
                && state.max_tokens < model_max
            {
                // The cut answer is discarded, but it was paid for.
                state.cost += self.model.info().cost(&response.usage).unwrap_or(0.0);
                state.max_tokens = state.max_tokens.saturating_mul(2).min(model_max);
                state.token_raises += 1;
                tracing::info!(session = %self.session, max_tokens = state.max_tokens, "the answer hit the output limit; asking again with a larger one");
                continue;
            }
            state.token_raises = 0;
            let cost = self.model.info().cost(&response.usage);
            let calls: Vec<Call> = response
                .message
                .tool_uses()
                .map(|(id, name, input)| (id.to_string(), name.to_string(), input.clone()))
                .collect();
            let text = response.message.text();
            let stop_reason = response.stop_reason.as_str().to_string();
            self.append(
                state,
                EventKind::AssistantMessage {
                    content: response.message.content,
                    model: self.model.info().id.clone(),
                    stop_reason,
                    usage: response.usage,
                    cost_usd: cost,
                    request_seq,
                },
            )
            .await?;
            state.steps += 1;
            state.cost += cost.unwrap_or(0.0);

            if calls.is_empty() {
                // Someone may have spoken while the model was answering.
                let new = self.sync(state).await?;
                if new.iter().any(|e| matches!(e.kind, EventKind::UserMessage { .. })) && !interrupt.is_cancelled() {
                    continue;
                }
                return Ok(TurnEnd::Finished { text });
            }
            if self.run_tools(state, calls.clone(), interrupt).await? {
                return Ok(TurnEnd::Interrupted);
            }
            if let Some(end) = self.guard_against_loops(state, &calls).await? {
                return Ok(end);
            }
        }
    }

    fn budget_reached(&self, state: &TurnState) -> Option<String> {
        if let Some(max) = self.config.max_steps
            && state.steps >= max
        {
            return Some(format!(
                "the step budget is reached ({max} model requests in this session); to continue, resume the \
                 session with a higher --max-steps"
            ));
        }
        if let Some(max) = self.config.max_cost_usd
            && state.cost >= max
        {
            return Some(format!(
                "the cost budget is reached (${:.2} of ${max:.2} spent in this session); to continue, resume the \
                 session with a higher --max-cost",
                state.cost
            ));
        }
        None
    }

    /// Decides what a failed model request means: try again later, or stop the turn.
    async fn model_failed(
        &self,
        state: &mut TurnState,
        error: LlmError,
        interrupt: &CancellationToken,
    ) -> Result<Option<TurnEnd>, AgentError> {
        let class = error.class();
        if class == ErrorClass::ContextWindowExceeded && !state.compaction_retried {
            // Compact once and try again before giving up.
            state.compaction_retried = true;
            if let Ok(mut policy) = self.policy.lock() {
                policy.force_compaction();
            }
            tracing::info!(session = %self.session, "the prompt was too large for the model; compacting and retrying");
            return Ok(None);
        }
        let count = if state.failures.0 == Some(class) { state.failures.1 + 1 } else { 1 };
        state.failures = (Some(class), count);
        let message = explain(&error);
        self.append(state, EventKind::Error { class: format!("{class:?}"), message: message.clone() }).await?;
        if !error.is_retryable() || count >= self.config.circuit_breaker {
            let message = if error.is_retryable() {
                format!("{message} (failed {count} times in a row; the turn stops here — send a message to try again)")
            } else {
                message
            };
            return Ok(Some(TurnEnd::Failed { class: format!("{class:?}"), message }));
        }
        let wait = self.config.failure_backoff.saturating_mul(count);
        tokio::select! {
            _ = tokio::time::sleep(wait) => Ok(None),
            _ = interrupt.cancelled() => Ok(Some(TurnEnd::Interrupted)),
        }
    }

    /// Re-reads the repository instructions when their files changed, and tells the model
    /// in the conversation rather than by rewriting the cached system prompt.
    async fn refresh_instructions(&self, state: &mut TurnState) -> Result<(), AgentError> {
        let workspace = self.sandbox.workspace().to_path_buf();
        let changed = {
            let Ok(mut current) = self.instructions.lock() else { return Ok(()) };
            if !current.is_stale(&workspace, &workspace) {
                return Ok(());
            }
            let fresh = knowledge::gather(&workspace, &workspace, self.config.instructions_budget_bytes);
            let changed = fresh.files != current.files;
            let text = prompt::instructions_prompt(&fresh)?;
            *current = fresh;
            changed.then_some(text)
        };
        if let Some(text) = changed {
            let text =
                text.unwrap_or_else(|| "# Repository instructions\nThe repository no longer has instructions.".into());
            let note = format!("[The repository instructions changed; they now read:]\n{text}");
            self.append(
                state,
                EventKind::UserMessage { content: vec![ContentBlock::text(note)], author: Some("rswe".into()) },
            )
            .await?;
        }
        Ok(())
    }

    /// The next step, as the context policy shapes it: the stable prefix (tools, system
    /// prompt, the instructions as first gathered) cached at its end, then the conversation.
    fn plan(&self, state: &TurnState) -> Result<Plan, AgentError> {
        let mut system = vec![SystemBlock::new(self.system_prompt.clone())];
        let initial_instructions =
            self.instructions.lock().ok().and_then(|i| prompt::instructions_prompt(&i).ok().flatten());
        if let Some(text) = initial_instructions {
            system.push(SystemBlock::new(text));
        }
        let tools = state.tools.definitions();
        let (messages, origins) = conversation::conversation_with_origins(&state.events());
        let info = self.model.info();
        let input = ContextInput {
            system: &system,
            tools: &tools,
            messages: &messages,
            window: info.context_window,
            max_output: state.max_tokens,
            caching: info.caching,
            max_breakpoints: info.max_cache_breakpoints,
        };
        let Ok(mut policy) = self.policy.lock() else {
            return Err(AgentError::Log(LogError("the context policy lock is poisoned".into())));
        };
        Ok(match policy.shape(&input) {
            Shaped::Request(mut request) => {
                request.thinking = self.config.thinking;
                Plan::Request(request)
            }
            Shaped::Compact { request, keep_first, summarise_until } => Plan::Compact {
                request,
                keep_first,
                until_seq: origins.get(summarise_until).copied().unwrap_or(u64::MAX),
                tokens_before: estimate_tokens(&system) + estimate_tokens(&tools) + estimate_tokens(&messages),
            },
        })
    }

    /// Asks the model for a summary of the conversation's middle and records it; the next
    /// plan derives the shorter conversation from the log.
    async fn compact(
        &self,
        state: &mut TurnState,
        request: &ModelRequest,
        keep_first: usize,
        until_seq: u64,
        tokens_before: u64,
        interrupt: &CancellationToken,
    ) -> Result<Option<TurnEnd>, AgentError> {
        tracing::info!(session = %self.session, tokens_before, "compacting the conversation");
        let result = tokio::select! {
            result = self.model.complete(request) => result,
            _ = interrupt.cancelled() => return Ok(Some(TurnEnd::Interrupted)),
        };
        let response = match result {
            Ok(response) => response,
            Err(error) => return self.model_failed(state, error, interrupt).await,
        };
        let summary = response.message.text();
        let mut events = state.events();
        let cost = self.model.info().cost(&response.usage);
        let kind = EventKind::ContextCompacted {
            summary: summary.clone(),
            keep_first,
            until_seq,
            tokens_before,
            tokens_after: 0,
            model: self.model.info().id.clone(),
            usage: response.usage,
            cost_usd: cost,
        };
        // Estimate the result before persisting, so the event says what it achieved.
        let probe = Event { session_id: self.session.clone(), seq: u64::MAX, at_ms: 0, kind: kind.clone() };
        events.push(probe);
        let after = estimate_tokens(&conversation::conversation(&events));
        let EventKind::ContextCompacted {
            summary, keep_first, until_seq, tokens_before, model, usage, cost_usd, ..
        } = kind
        else {
            return Ok(None);
        };
        self.append(
            state,
            EventKind::ContextCompacted {
                summary,
                keep_first,
                until_seq,
                tokens_before,
                tokens_after: after,
                model,
                usage,
                cost_usd,
            },
        )
        .await?;
        state.cost += cost.unwrap_or(0.0);
        state.warned_near_limit = false;
        Ok(None)
    }

    /// Runs the calls: consecutive read-only calls together (bounded), others one by one,
    /// each result persisted as it completes. Returns whether the person interrupted.
    async fn run_tools(
        &self,
        state: &mut TurnState,
        calls: Vec<Call>,
        interrupt: &CancellationToken,
    ) -> Result<bool, AgentError> {
        let tools = state.tools.clone();
        let mut batches: Vec<Vec<Call>> = Vec::new();
        for call in calls {
            let read_only = tools.is_read_only(&call.1, &call.2);
            match batches.last_mut() {
                Some(batch) if read_only && batch.iter().all(|c| tools.is_read_only(&c.1, &c.2)) => batch.push(call),
                _ => batches.push(vec![call]),
            }
        }
        let mut pending = batches.into_iter();
        while let Some(batch) = pending.next() {
            if interrupt.is_cancelled() {
                for (id, name, _) in batch.into_iter().chain(pending.flatten()) {
                    self.append(state, tool_result(&id, &name, SKIPPED_RESULT, true, 0)).await?;
                }
                return Ok(true);
            }
            let mut running =
                futures::stream::iter(batch.into_iter().map(|call| self.run_tool(&tools, call, interrupt)))
                    .buffer_unordered(self.config.max_parallel_tools.max(1));
            while let Some((id, name, output, duration)) = running.next().await {
                for effect in &output.effects {
                    self.append(state, effect_event(effect)).await?;
                }
                let content = if output.content.is_empty() {
                    vec![ToolResultContent::Text { text: "(no output)".into() }]
                } else {
                    self.admit(&id, &name, output.content).await
                };
                let kind = EventKind::ToolResult {
                    tool_use_id: id,
                    name,
                    content,
                    is_error: output.is_error,
                    duration_ms: duration.as_millis() as u64,
                };
                self.append(state, kind).await?;
            }
        }
        Ok(interrupt.is_cancelled())
    }

    /// Bounds a result's text as it enters the history; when anything is cut, the whole
    /// text is saved in the workspace and the result says where.
    async fn admit(&self, id: &str, name: &str, content: Vec<ToolResultContent>) -> Vec<ToolResultContent> {
        let Ok(policy) = self.policy.lock().map(|p| p.clone()) else { return content };
        let mut admitted = Vec::with_capacity(content.len());
        for (index, part) in content.into_iter().enumerate() {
            let ToolResultContent::Text { text } = part else {
                admitted.push(part);
                continue;
            };
            let bounded = policy.admit(name, text.clone(), None);
            if bounded == text {
                admitted.push(ToolResultContent::Text { text });
                continue;
            }
            let safe_id: String = id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect();
            let relative = std::path::PathBuf::from(format!(".rswe/outputs/{safe_id}-{index}.txt"));
            let saved = match self.sandbox.write_file(&relative, text.as_bytes()).await {
                Ok(()) => Some(self.sandbox.workspace().join(&relative).display().to_string()),
                Err(error) => {
                    tracing::warn!(%error, "could not save a full tool output");
                    None
                }
            };
            admitted.push(ToolResultContent::Text { text: policy.admit(name, text, saved.as_deref()) });
        }
        admitted
    }

    async fn run_tool(
        &self,
        tools: &ToolRegistry,
        (id, name, input): Call,
        interrupt: &CancellationToken,
    ) -> (String, String, ToolOutput, Duration) {
        (self.live)(LiveEvent::ToolStarted { tool_use_id: id.clone(), name: name.clone(), input: input.clone() });
        let live = self.live.clone();
        let context = ToolContext {
            session_id: self.session.clone(),
            tool_use_id: id.clone(),
            sandbox: self.sandbox.clone(),
            cancel: interrupt.child_token(),
            progress: Some(Arc::new(move |progress| live(LiveEvent::ToolProgress(progress)))),
        };
        let started = Instant::now();
        let output = tools.run(&name, input, &context).await;
        (id, name, output, started.elapsed())
    }

    /// The same call with the same result again and again will not change: nudge once,
    /// then stop.
    async fn guard_against_loops(&self, state: &mut TurnState, calls: &[Call]) -> Result<Option<TurnEnd>, AgentError> {
        let events = state.events();
        for (id, name, input) in calls {
            let result = events.iter().rev().find_map(|e| match &e.kind {
                EventKind::ToolResult { tool_use_id, content, .. } if tool_use_id == id => Some(content.clone()),
                _ => None,
            });
            let signature = format!("{name}\u{0}{input}\u{0}{}", serde_json::to_string(&result).unwrap_or_default());
            let count = match &state.last_call {
                Some((last, count)) if *last == signature => count + 1,
                _ => 1,
            };
            state.last_call = Some((signature, count));
            if count == self.config.repeat_nudge {
                let note = format!(
                    "[rswe: you have made the same `{name}` call with the same result {count} times in a row. \
                     Repeating it will not change the result: try a different approach, or explain what blocks you.]"
                );
                self.append(
                    state,
                    EventKind::UserMessage { content: vec![ContentBlock::text(note)], author: Some("rswe".into()) },
                )
                .await?;
            }
            if count >= self.config.repeat_stop {
                let message = format!(
                    "the agent repeated the same `{name}` call with the same result {count} times and was stopped; \
                     send a message with guidance to continue"
                );
                self.append(state, EventKind::Error { class: "loop".into(), message: message.clone() }).await?;
                return Ok(Some(TurnEnd::Failed { class: "loop".into(), message }));
            }
        }
        Ok(None)
    }
}

fn tool_result(id: &str, name: &str, text: &str, is_error: bool, duration_ms: u64) -> EventKind {
    EventKind::ToolResult {
        tool_use_id: id.to_string(),
        name: name.to_string(),
        content: vec![ToolResultContent::Text { text: text.to_string() }],
        is_error,
        duration_ms,
    }
}

fn effect_event(effect: &ToolEffect) -> EventKind {
    match effect {
        ToolEffect::Message(text) => EventKind::AgentMessage { text: text.clone() },
        ToolEffect::SendFile { path, message, size } => {
            EventKind::FileSent { path: path.clone(), message: message.clone(), size: *size }
        }
        ToolEffect::Title(title) => EventKind::TitleChanged { title: title.clone() },
        ToolEffect::Todo(items) => EventKind::TodoUpdated { items: items.clone() },
    }
}

/// An error in words a person can act on.
fn explain(error: &LlmError) -> String {
    match error.class() {
        ErrorClass::Authentication => format!("{error}. Fix the credentials and send a message to continue."),
        ErrorClass::ContextWindowExceeded => {
            format!("{error}. The conversation no longer fits the model's context window.")
        }
        _ => error.to_string(),
    }
}
