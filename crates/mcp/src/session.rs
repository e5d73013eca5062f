//! A session's MCP servers: started at its first step, one instance each, restarted once
//! when one dies, and stopped when the session rests. Their tools reach the agent as
//! `mcp__<server>__<tool>` through [`ToolSource`].

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use rswe_sandbox::Sandbox;
use rswe_tools::{SourcedTools, Tool, ToolContext, ToolOutput, ToolSource};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::{McpConfig, ServerConfig, Transport};
use crate::naming;
use crate::results;
use crate::server::{CallError, Connection, ListedTool};

/// A repository's own server list, used only when the operator allows it.
pub const REPOSITORY_FILE: &str = ".mcp.json";

/// Timeouts of a session's servers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct McpSettings {
    /// From starting a server to the end of its handshake.
    pub startup_timeout: Duration,
    /// One tool call, unless the server's `timeout` says otherwise.
    pub call_timeout: Duration,
}

impl Default for McpSettings {
    fn default() -> Self {
        McpSettings { startup_timeout: Duration::from_secs(30), call_timeout: Duration::from_secs(120) }
    }
}

enum State {
    NotStarted,
    Running(Arc<Connection>),
    /// Given up on, for the reason said.
    Failed(String),
}

struct Slot {
    config: ServerConfig,
    state: State,
    /// It died once and was started again; the next death is final.
    restarted: bool,
    tools: Vec<Arc<dyn Tool>>,
}

struct Inner {
    sandbox: Arc<dyn Sandbox>,
    settings: McpSettings,
    slots: tokio::sync::Mutex<Vec<Slot>>,
    /// Said once, at the next turn (configuration problems found before the start).
    notices: std::sync::Mutex<Vec<String>>,
}

/// The MCP servers of one session.
#[derive(Clone)]
pub struct McpSession {
    inner: Arc<Inner>,
}

impl McpSession {
    /// The enabled servers of `config`; nothing starts until [`ToolSource::prepare`].
    /// `notices` are told to the person at the first turn (a repository's unusable
    /// `.mcp.json`, for instance).
    pub fn new(config: &McpConfig, sandbox: Arc<dyn Sandbox>, settings: McpSettings, notices: Vec<String>) -> Self {
        let slots = config
            .enabled()
            .map(|config| Slot {
                config: config.clone(),
                state: State::NotStarted,
                restarted: false,
                tools: Vec::new(),
            })
            .collect();
        McpSession {
            inner: Arc::new(Inner {
                sandbox,
                settings,
                slots: tokio::sync::Mutex::new(slots),
                notices: std::sync::Mutex::new(notices),
            }),
        }
    }

    /// The operator's servers, and (when `use_repository`) those of the workspace's own
    /// `.mcp.json`. A repository's servers are stdio servers that always run in the
    /// sandbox (URL servers would be reached from rswe itself), their `${VAR}`s
    /// expand to nothing from rswe's environment, and they never replace an operator's
    /// server of the same name. A repository file that cannot be used is told to the
    /// person at the first turn.
    pub async fn for_workspace(
        operator: &McpConfig,
        sandbox: Arc<dyn Sandbox>,
        settings: McpSettings,
        use_repository: bool,
    ) -> Self {
        let mut config = operator.clone();
        let mut notices = Vec::new();
        if use_repository {
            match sandbox.read_file(std::path::Path::new(REPOSITORY_FILE)).await {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    match McpConfig::from_json(&text, &|_| None) {
                        Ok(repository) => {
                            for (name, mut server) in repository.servers {
                                if config.servers.contains_key(&name) {
                                    tracing::info!(server = %name, "the repository's .mcp.json names a configured server; the configured one is used");
                                    continue;
                                }
                                if !matches!(server.transport, Transport::Stdio { .. }) {
                                    notices.push(format!(
                                        "The repository's {REPOSITORY_FILE} names the URL server `{name}`, which was \
                                         not used: only stdio servers, which run in the sandbox, are taken from a \
                                         repository."
                                    ));
                                    continue;
                                }
                                server.trusted = false;
                                config.servers.insert(name, server);
                            }
                        }
                        Err(error) => notices.push(format!("The repository's {REPOSITORY_FILE} was not used: {error}")),
                    }
                }
                Err(rswe_sandbox::SandboxError::NotFound { .. }) => {}
                Err(error) => notices.push(format!("The repository's {REPOSITORY_FILE} could not be read: {error}")),
            }
        }
        McpSession::new(&config, sandbox, settings, notices)
    }

    /// Whether there is anything to start.
    pub async fn is_empty(&self) -> bool {
        self.inner.slots.lock().await.is_empty()
    }

    /// Stops every server; a later turn starts them again.
    pub async fn shutdown(&self) {
        let mut slots = self.inner.slots.lock().await;
        let running: Vec<Arc<Connection>> = slots
            .iter_mut()
            .filter_map(|slot| match std::mem::replace(&mut slot.state, State::NotStarted) {
                State::Running(connection) => Some(connection),
                other => {
                    slot.state = other;
                    None
                }
            })
            .collect();
        for slot in slots.iter_mut() {
            slot.restarted = false;
            slot.tools.clear();
            if matches!(slot.state, State::Failed(_)) {
                slot.state = State::NotStarted;
            }
        }
        drop(slots);
        join_all(running.iter().map(|connection| connection.shutdown())).await;
    }

    fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.inner.notices.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// The tools as of the last [`ToolSource::prepare`], for tests and listings.
    pub async fn tools(&self) -> Vec<Arc<dyn Tool>> {
        self.inner.slots.lock().await.iter().flat_map(|slot| slot.tools.iter().cloned()).collect()
    }
}

impl Inner {
    /// Keeps a notice for the person, told at the next turn.
    fn tell(&self, notice: String) {
        self.notices.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(notice);
    }

    /// Starts a server and lists its tools.
    async fn start(self: &Arc<Self>, config: &ServerConfig) -> Result<(Arc<Connection>, Vec<Arc<dyn Tool>>), String> {
        let connection = Connection::start(config, self.sandbox.as_ref(), self.settings.startup_timeout).await?;
        let connection = Arc::new(connection);
        match connection.list_tools().await {
            Ok(listed) => {
                let tools = self.tools_of(config, listed);
                Ok((connection, tools))
            }
            Err(error) => {
                connection.shutdown().await;
                Err(error)
            }
        }
    }

    fn tools_of(self: &Arc<Self>, config: &ServerConfig, listed: Vec<ListedTool>) -> Vec<Arc<dyn Tool>> {
        let timeout = config.timeout.unwrap_or(self.settings.call_timeout);
        listed
            .into_iter()
            .map(|tool| {
                Arc::new(McpTool {
                    exposed: naming::exposed_name(&config.name, &tool.name),
                    description: naming::description(
                        &config.name,
                        &tool.name,
                        tool.description.as_deref(),
                        tool.title.as_deref(),
                    ),
                    schema: naming::input_schema(&tool.input_schema),
                    server: config.name.clone(),
                    tool: tool.name,
                    timeout,
                    session: Arc::downgrade(self),
                }) as Arc<dyn Tool>
            })
            .collect()
    }

    /// The server's connection for a call, restarting it once if it died.
    async fn connection(self: &Arc<Self>, server: &str) -> Result<Arc<Connection>, String> {
        let mut slots = self.slots.lock().await;
        let Some(slot) = slots.iter_mut().find(|slot| slot.config.name == server) else {
            return Err(format!("the MCP server `{server}` is not configured for this session"));
        };
        match &slot.state {
            State::Running(connection) if connection.is_alive() => return Ok(connection.clone()),
            State::Failed(reason) => return Err(format!("the MCP server `{server}` is not running: {reason}")),
            State::Running(connection) if slot.restarted => {
                let report = connection.death_report().await;
                let reason = format!("it stopped again after a restart ({report})");
                self.tell(format!(
                    "The MCP server `{server}` stopped again after a restart, so the session goes on without its \
                     tools: {report}"
                ));
                slot.state = State::Failed(reason.clone());
                slot.tools.clear();
                return Err(format!("the MCP server `{server}` is not running: {reason}"));
            }
            State::Running(connection) => {
                let report = connection.death_report().await;
                tracing::info!(server, %report, "an MCP server stopped; restarting it");
                slot.restarted = true;
            }
            State::NotStarted => {}
        }
        match self.start(&slot.config).await {
            Ok((connection, tools)) => {
                slot.state = State::Running(connection.clone());
                slot.tools = tools;
                Ok(connection)
            }
            Err(error) => {
                self.tell(format!(
                    "The MCP server `{server}` did not start again, so the session goes on without its tools: {error}"
                ));
                slot.state = State::Failed(error.clone());
                slot.tools.clear();
                Err(format!("the MCP server `{server}` could not be started again: {error}"))
            }
        }
    }

    async fn prepare(self: &Arc<Self>) -> Vec<String> {
        let mut notices = Vec::new();
        let mut slots = self.slots.lock().await;
        let mut to_start = Vec::new();
        for (index, slot) in slots.iter_mut().enumerate() {
            let State::Running(connection) = &slot.state else {
                if matches!(slot.state, State::NotStarted) {
                    to_start.push(index);
                }
                continue;
            };
            if connection.is_alive() {
                continue;
            }
            let report = connection.death_report().await;
            if slot.restarted {
                notices.push(format!(
                    "The MCP server `{}` stopped again after a restart, so the session goes on without its tools: \
                     {report}",
                    slot.config.name
                ));
                slot.state = State::Failed(report);
                slot.tools.clear();
            } else {
                tracing::info!(server = %slot.config.name, %report, "an MCP server stopped; restarting it");
                slot.restarted = true;
                to_start.push(index);
            }
        }
        let configs: Vec<ServerConfig> = to_start.iter().map(|index| slots[*index].config.clone()).collect();
        let started = join_all(configs.iter().map(|config| self.start(config))).await;
        for (index, result) in to_start.into_iter().zip(started) {
            let slot = &mut slots[index];
            match result {
                Ok((connection, tools)) => {
                    slot.state = State::Running(connection);
                    slot.tools = tools;
                }
                Err(error) => {
                    tracing::info!(server = %slot.config.name, %error, "an MCP server did not start");
                    notices.push(format!(
                        "The MCP server `{}` did not start, so the session goes on without its tools: {error}",
                        slot.config.name
                    ));
                    slot.state = State::Failed(error);
                    slot.tools.clear();
                }
            }
        }
        // Tool lists that changed are taken up now, at the start of a turn.
        for slot in slots.iter_mut() {
            let State::Running(connection) = &slot.state else { continue };
            if !connection.tools_changed() {
                continue;
            }
            match connection.list_tools().await {
                Ok(listed) => {
                    tracing::info!(server = %slot.config.name, tools = listed.len(), "an MCP server's tools changed");
                    slot.tools = self.tools_of(&slot.config, listed);
                }
                Err(error) => tracing::warn!(server = %slot.config.name, %error, "could not list changed tools"),
            }
        }
        notices
    }
}

#[async_trait::async_trait]
impl ToolSource for McpSession {
    async fn prepare(&self, cancel: &CancellationToken) -> SourcedTools {
        let mut notices = self.take_notices();
        tokio::select! {
            started = self.inner.prepare() => notices.extend(started),
            () = cancel.cancelled() => return SourcedTools { tools: Vec::new(), notices },
        }
        // Notices of calls that found a server gone for good come after what prepare found.
        notices.extend(self.take_notices());
        SourcedTools { tools: self.tools().await, notices }
    }
}

/// One tool of one server.
struct McpTool {
    exposed: String,
    description: String,
    schema: Value,
    server: String,
    /// The name the server knows it by.
    tool: String,
    timeout: Duration,
    session: std::sync::Weak<Inner>,
}

#[async_trait::async_trait]
impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.exposed
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn input_schema(&self) -> Value {
        self.schema.clone()
    }

    async fn run(&self, input: Value, context: &ToolContext) -> ToolOutput {
        let arguments = match input {
            Value::Object(arguments) => arguments,
            Value::Null => serde_json::Map::new(),
            Value::String(text) => match serde_json::from_str(&text) {
                Ok(Value::Object(arguments)) => arguments,
                _ => return ToolOutput::error(format!("invalid input for {}: expected a JSON object", self.exposed)),
            },
            _ => return ToolOutput::error(format!("invalid input for {}: expected a JSON object", self.exposed)),
        };
        let Some(session) = self.session.upgrade() else {
            return ToolOutput::error(format!("the MCP server `{}` has been stopped", self.server));
        };
        let connection = match session.connection(&self.server).await {
            Ok(connection) => connection,
            Err(error) => return ToolOutput::error(error),
        };
        match connection.call(&self.tool, arguments, self.timeout, &context.cancel).await {
            Ok(result) => tokio::task::spawn_blocking(move || results::tool_output(&result))
                .await
                .unwrap_or_else(|error| ToolOutput::error(format!("could not read the result: {error}"))),
            Err(CallError::Timeout(timeout)) => ToolOutput::error(format!(
                "{} got no answer within {} s, so the call was cancelled. The server may be stuck, or the task \
                 too slow for it: try a smaller request or another way.",
                self.exposed,
                timeout.as_secs_f64()
            )),
            Err(CallError::Cancelled) => ToolOutput::error("interrupted: the call was cancelled"),
            Err(CallError::Gone(report)) => ToolOutput::error(format!(
                "the MCP server `{}` stopped during the call: {report}. Calling one of its tools again restarts \
                 it once.",
                self.server
            )),
            Err(CallError::Failed(error)) => {
                ToolOutput::error(format!("the MCP server `{}` could not run {}: {error}", self.server, self.tool))
            }
        }
    }
}

/// What `rswe mcp list` shows of one server.
#[derive(Debug)]
pub struct ServerCheck {
    pub name: String,
    /// `stdio in the sandbox: npx -y …`, `http: https://…`.
    pub transport: String,
    pub enabled: bool,
    /// What it offers, or why it could not be used.
    pub outcome: Result<ServerOffer, String>,
}

/// A started server's identity and tools.
#[derive(Debug)]
pub struct ServerOffer {
    /// `name version` as the server reported it.
    pub server_info: Option<String>,
    /// Its tools as the model sees them: name and description.
    pub tools: Vec<(String, String)>,
}

/// Starts every configured server (disabled ones are listed, not started), lists its
/// tools, and stops it again.
pub async fn check_servers(config: &McpConfig, sandbox: Arc<dyn Sandbox>, settings: McpSettings) -> Vec<ServerCheck> {
    let checks = config.servers.values().map(|server| {
        let sandbox = sandbox.clone();
        async move {
            let outcome =
                if server.enabled { check_one(server, sandbox, settings).await } else { Err("disabled".to_string()) };
            ServerCheck { name: server.name.clone(), transport: describe(server), enabled: server.enabled, outcome }
        }
    });
    join_all(checks).await
}

async fn check_one(
    server: &ServerConfig,
    sandbox: Arc<dyn Sandbox>,
    settings: McpSettings,
) -> Result<ServerOffer, String> {
    let connection = Connection::start(server, sandbox.as_ref(), settings.startup_timeout).await?;
    let listed = connection.list_tools().await;
    connection.shutdown().await;
    let tools = listed?
        .into_iter()
        .map(|tool| {
            let description =
                naming::description(&server.name, &tool.name, tool.description.as_deref(), tool.title.as_deref());
            (naming::exposed_name(&server.name, &tool.name), description)
        })
        .collect();
    Ok(ServerOffer { server_info: connection.server_info.clone(), tools })
}

fn describe(server: &ServerConfig) -> String {
    match &server.transport {
        Transport::Stdio { command, args, .. } => {
            let place = if server.trusted { "beside rswe (trusted)" } else { "in the sandbox" };
            let line = std::iter::once(command.as_str()).chain(args.iter().map(String::as_str)).collect::<Vec<_>>();
            format!("stdio {place}: {}", line.join(" "))
        }
        Transport::Http { url, .. } => format!("http: {url}"),
        Transport::Sse { url, .. } => format!("sse: {url}"),
    }
}
