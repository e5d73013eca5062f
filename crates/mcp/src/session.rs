//! A session's MCP servers: started at its first step, one instance each, restarted once
//! when one dies, and stopped when the session rests. Their tools reach the agent as
//! `mcp__<server>__<tool>` through [`ToolSource`].

use std::sync::{Arc, PoisonError};
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

/// Tools offered to the model from one server at the most: every tool's schema is sent
/// with every request.
pub const MAX_TOOLS_PER_SERVER: usize = 200;
/// The largest input schema of a tool offered to the model, in bytes.
pub const MAX_SCHEMA_BYTES: usize = 16 * 1024;

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
    /// Never held across an await.
    slots: std::sync::Mutex<Vec<Slot>>,
    /// Held while servers start, restart or are listed again: one start at a time, and
    /// calls to running servers never wait for it.
    starting: tokio::sync::Mutex<()>,
    /// Said at the next turn: problems found before the start, or during a call.
    notices: std::sync::Mutex<Vec<String>>,
}

/// What a server needs before it can take a call.
enum Need {
    Ready(Arc<Connection>),
    /// A first start, or a restart of the dead connection given.
    Start(Option<Arc<Connection>>),
    /// Dead after its restart.
    GiveUp(Arc<Connection>),
    Failed(String),
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
                slots: std::sync::Mutex::new(slots),
                starting: tokio::sync::Mutex::new(()),
                notices: std::sync::Mutex::new(notices),
            }),
        }
    }

    /// The operator's servers, and (when `use_repository`) those of the workspace's own
    /// `.mcp.json`. A repository's servers are stdio servers that always run in the
    /// sandbox (URL servers would be reached from rswe itself), their `${VAR}`s get
    /// nothing from rswe's environment (only defaults), their `timeout` is at most the
    /// operator's, and they never replace an operator's
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
                                server.timeout = Some(
                                    server
                                        .timeout
                                        .map_or(settings.call_timeout, |timeout| timeout.min(settings.call_timeout)),
                                );
                                config.servers.insert(name, server);
                            }
                        }
                        Err(error) if error.message.contains("is not set") => notices.push(format!(
                            "The repository's {REPOSITORY_FILE} was not used: {error}. A repository's servers get no \
                             variables from rswe's environment: give them defaults, as in ${{NAME:-value}}."
                        )),
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
    pub fn is_empty(&self) -> bool {
        self.inner.slots().is_empty()
    }

    /// Stops every server; a later turn starts them again (those given up on too).
    pub async fn shutdown(&self) {
        let _starting = self.inner.starting.lock().await;
        let running: Vec<Arc<Connection>> = self
            .inner
            .slots()
            .iter_mut()
            .filter_map(|slot| {
                slot.restarted = false;
                slot.tools.clear();
                match std::mem::replace(&mut slot.state, State::NotStarted) {
                    State::Running(connection) => Some(connection),
                    _ => None,
                }
            })
            .collect();
        join_all(running.iter().map(|connection| connection.shutdown())).await;
    }

    /// The tools as of the last [`ToolSource::prepare`].
    pub fn tools(&self) -> Vec<Arc<dyn Tool>> {
        self.inner.slots().iter().flat_map(|slot| slot.tools.iter().cloned()).collect()
    }

    fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.inner.notices.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Inner {
    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a notice for the person, told at the next turn.
    fn tell(&self, notice: String) {
        self.notices.lock().unwrap_or_else(PoisonError::into_inner).push(notice);
    }

    fn need(slot: &Slot) -> Need {
        match &slot.state {
            State::NotStarted => Need::Start(None),
            State::Failed(reason) => Need::Failed(reason.clone()),
            State::Running(connection) if connection.is_alive() => Need::Ready(connection.clone()),
            State::Running(connection) if slot.restarted => Need::GiveUp(connection.clone()),
            State::Running(connection) => Need::Start(Some(connection.clone())),
        }
    }

    /// What the server named needs, with its configuration.
    fn need_of(&self, server: &str) -> Option<(ServerConfig, Need)> {
        let slots = self.slots();
        let slot = slots.iter().find(|slot| slot.config.name == server)?;
        Some((slot.config.clone(), Inner::need(slot)))
    }

    fn update(&self, server: &str, change: impl FnOnce(&mut Slot)) {
        if let Some(slot) = self.slots().iter_mut().find(|slot| slot.config.name == server) {
            change(slot);
        }
    }

    /// Records a server given up on; returns the notice for the person.
    fn give_up(&self, server: &str, reason: String, notice: String) -> String {
        self.update(server, |slot| {
            slot.state = State::Failed(reason);
            slot.tools.clear();
        });
        notice
    }

    /// Stops a dead connection; how it ended.
    async fn bury(old: &Connection) -> String {
        let report = old.death_report().await;
        old.shutdown().await;
        report
    }

    /// Starts a server and lists its tools; also what had to be left out of its tools.
    async fn start(
        self: &Arc<Self>,
        config: &ServerConfig,
    ) -> Result<(Arc<Connection>, Vec<Arc<dyn Tool>>, Option<String>), String> {
        let connection = Connection::start(config, self.sandbox.as_ref(), self.settings.startup_timeout).await?;
        let connection = Arc::new(connection);
        match connection.list_tools().await {
            Ok(listed) => {
                let (tools, left_out) = self.tools_of(config, listed);
                Ok((connection, tools, left_out))
            }
            Err(error) => {
                connection.shutdown().await;
                Err(error)
            }
        }
    }

    /// Installs a started server (a restart when `restart`).
    fn install(&self, server: &str, connection: Arc<Connection>, tools: Vec<Arc<dyn Tool>>, restart: bool) {
        self.update(server, |slot| {
            slot.state = State::Running(connection);
            slot.tools = tools;
            slot.restarted |= restart;
        });
    }

    /// The server's tools as the model sees them (see [`offered_tools`]).
    fn tools_of(
        self: &Arc<Self>,
        config: &ServerConfig,
        listed: Vec<ListedTool>,
    ) -> (Vec<Arc<dyn Tool>>, Option<String>) {
        let timeout = config.timeout.unwrap_or(self.settings.call_timeout);
        let (offered, notice) = offered_tools(&config.name, listed);
        let tools = offered
            .into_iter()
            .map(|(tool, exposed, schema)| {
                Arc::new(McpTool {
                    exposed,
                    description: naming::description(
                        &config.name,
                        &tool.name,
                        tool.description.as_deref(),
                        tool.title.as_deref(),
                    ),
                    schema,
                    server: config.name.clone(),
                    tool: tool.name,
                    timeout,
                    session: Arc::downgrade(self),
                }) as Arc<dyn Tool>
            })
            .collect();
        (tools, notice)
    }

    /// The server's connection for a call, started (or restarted once) when needed.
    /// `cancel` (the person's interrupt) ends the wait.
    async fn connection(self: &Arc<Self>, server: &str, cancel: &CancellationToken) -> Result<Arc<Connection>, String> {
        let not_running = |reason: &str| format!("the MCP server `{server}` is not running: {reason}");
        let interrupted = || format!("interrupted while the MCP server `{server}` was starting");
        match self.need_of(server) {
            None => return Err(format!("the MCP server `{server}` is not configured for this session")),
            Some((_, Need::Ready(connection))) => return Ok(connection),
            Some((_, Need::Failed(reason))) => return Err(not_running(&reason)),
            Some(_) => {}
        }
        let _starting = tokio::select! {
            guard = self.starting.lock() => guard,
            () = cancel.cancelled() => return Err(interrupted()),
        };
        // Another call may have started it meanwhile.
        let Some((config, need)) = self.need_of(server) else {
            return Err(format!("the MCP server `{server}` is not configured for this session"));
        };
        let restart = match need {
            Need::Ready(connection) => return Ok(connection),
            Need::Failed(reason) => return Err(not_running(&reason)),
            Need::GiveUp(old) => {
                let report = Inner::bury(&old).await;
                self.tell(self.give_up(
                    server,
                    format!("it stopped again after a restart ({report})"),
                    format!(
                        "The MCP server `{server}` stopped again after a restart, so the session goes on without \
                         its tools: {report}"
                    ),
                ));
                return Err(not_running("it stopped again after a restart"));
            }
            Need::Start(old) => old,
        };
        if let Some(old) = &restart {
            let report = Inner::bury(old).await;
            tracing::info!(server, %report, "an MCP server stopped; restarting it");
        }
        let started = tokio::select! {
            started = self.start(&config) => started,
            () = cancel.cancelled() => return Err(interrupted()),
        };
        match started {
            Ok((connection, tools, left_out)) => {
                self.install(server, connection.clone(), tools, restart.is_some());
                if let Some(notice) = left_out {
                    self.tell(notice);
                }
                Ok(connection)
            }
            Err(error) => {
                let again = if restart.is_some() { " again" } else { "" };
                self.tell(self.give_up(
                    server,
                    error.clone(),
                    format!(
                        "The MCP server `{server}` did not start{again}, so the session goes on without its tools: \
                         {error}"
                    ),
                ));
                Err(format!("the MCP server `{server}` could not be started{again}: {error}"))
            }
        }
    }

    /// Starts what is not running, restarts what died once, gives up on what died twice,
    /// and takes up changed tool lists. Returns the notices for the person.
    async fn prepare(self: &Arc<Self>) -> Vec<String> {
        let _starting = self.starting.lock().await;
        let needs: Vec<(ServerConfig, Need)> =
            self.slots().iter().map(|slot| (slot.config.clone(), Inner::need(slot))).collect();
        let mut notices = Vec::new();
        let mut to_start = Vec::new();
        let mut to_relist = Vec::new();
        for (config, need) in needs {
            match need {
                Need::Failed(_) => {}
                Need::Ready(connection) => {
                    if connection.tools_changed() {
                        to_relist.push((config, connection));
                    }
                }
                Need::GiveUp(old) => {
                    let report = Inner::bury(&old).await;
                    notices.push(self.give_up(
                        &config.name,
                        format!("it stopped again after a restart ({report})"),
                        format!(
                            "The MCP server `{}` stopped again after a restart, so the session goes on without its \
                             tools: {report}",
                            config.name
                        ),
                    ));
                }
                Need::Start(old) => {
                    if let Some(old) = &old {
                        let report = Inner::bury(old).await;
                        tracing::info!(server = %config.name, %report, "an MCP server stopped; restarting it");
                    }
                    to_start.push((config, old.is_some()));
                }
            }
        }
        let started = join_all(to_start.iter().map(|(config, _)| self.start(config))).await;
        for ((config, restart), result) in to_start.into_iter().zip(started) {
            match result {
                Ok((connection, tools, left_out)) => {
                    self.install(&config.name, connection, tools, restart);
                    notices.extend(left_out);
                }
                Err(error) => {
                    tracing::info!(server = %config.name, %error, "an MCP server did not start");
                    let again = if restart { " again" } else { "" };
                    notices.push(self.give_up(
                        &config.name,
                        error.clone(),
                        format!(
                            "The MCP server `{}` did not start{again}, so the session goes on without its tools: \
                             {error}",
                            config.name
                        ),
                    ));
                }
            }
        }
        // Tool lists that changed are taken up now, at the start of a turn.
        for (config, connection) in to_relist {
            match connection.list_tools().await {
                Ok(listed) => {
                    tracing::info!(server = %config.name, tools = listed.len(), "an MCP server's tools changed");
                    let (tools, left_out) = self.tools_of(&config, listed);
                    self.update(&config.name, |slot| slot.tools = tools);
                    notices.extend(left_out);
                }
                Err(error) => tracing::warn!(server = %config.name, %error, "could not list changed tools"),
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
        SourcedTools { tools: self.tools(), notices }
    }
}

/// The tools of a server offered to the model, within bounds: at most
/// [`MAX_TOOLS_PER_SERVER`], each input schema at most [`MAX_SCHEMA_BYTES`], no two with the
/// same name. Each with its exposed name and schema; and what had to be left out, said for
/// the person.
fn offered_tools(server: &str, listed: Vec<ListedTool>) -> (Vec<(ListedTool, String, Value)>, Option<String>) {
    let listed_count = listed.len();
    let mut too_large = Vec::new();
    let mut names = std::collections::HashSet::new();
    let mut offered = Vec::new();
    for tool in listed {
        if offered.len() >= MAX_TOOLS_PER_SERVER {
            break;
        }
        let schema = naming::input_schema(&tool.input_schema);
        if schema.to_string().len() > MAX_SCHEMA_BYTES {
            too_large.push(tool.name);
            continue;
        }
        let exposed = naming::exposed_name(server, &tool.name);
        if names.insert(exposed.clone()) {
            offered.push((tool, exposed, schema));
        }
    }
    let mut left_out = Vec::new();
    if !too_large.is_empty() {
        left_out.push(format!(
            "{} left out because its input schema is larger than {} KiB",
            too_large.join(", "),
            MAX_SCHEMA_BYTES / 1024
        ));
    }
    if listed_count > offered.len() + too_large.len() && offered.len() >= MAX_TOOLS_PER_SERVER {
        left_out.push(format!("it offers {listed_count} tools and only the first {MAX_TOOLS_PER_SERVER} are used"));
    }
    let notice = (!left_out.is_empty())
        .then(|| format!("Not every tool of the MCP server `{server}` is available: {}.", left_out.join("; ")));
    (offered, notice)
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
        let connection = match session.connection(&self.server, &context.cancel).await {
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
                "the MCP server `{}` stopped during the call (calling one of its tools again restarts it, once): \
                 {report}",
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
        Transport::Http { url, .. } => format!("http: {}", crate::config::shown_url(url)),
        Transport::Sse { url, .. } => format!("sse: {}", crate::config::shown_url(url)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(name: &str, schema_bytes: usize) -> ListedTool {
        let mut input_schema = serde_json::Map::new();
        input_schema.insert("description".into(), Value::String("x".repeat(schema_bytes)));
        ListedTool { name: name.into(), description: None, title: None, input_schema }
    }

    #[test]
    fn a_server_offers_a_bounded_set_of_tools_and_the_person_hears_what_was_left_out() {
        let mut tools: Vec<ListedTool> = (0..300).map(|i| listed(&format!("t{i}"), 10)).collect();
        tools.insert(1, listed("huge", MAX_SCHEMA_BYTES));
        tools.insert(2, listed("t0", 10));
        let (offered, notice) = offered_tools("big", tools);
        assert_eq!(offered.len(), MAX_TOOLS_PER_SERVER);
        assert_eq!(offered[0].1, "mcp__big__t0");
        assert_eq!(offered[1].1, "mcp__big__t1", "the duplicate is dropped");
        assert_eq!(
            notice.as_deref(),
            Some(
                "Not every tool of the MCP server `big` is available: huge left out because its input schema is \
                 larger than 16 KiB; it offers 302 tools and only the first 200 are used."
            )
        );
        let (offered, notice) = offered_tools("small", vec![listed("a", 10), listed("b", 10)]);
        assert_eq!(offered.len(), 2);
        assert_eq!(notice, None);
    }
}
