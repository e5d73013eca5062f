//! One running MCP server: started over its transport, initialised, asked for its tools,
//! called with a timeout and cancellation, and shut down.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use rswe_sandbox::{ProcessHandle, ProcessRequest, Sandbox, SandboxProcess};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::sync::CancellationToken;

use crate::config::{ServerConfig, Transport, shown_url};
use crate::legacy_sse;

/// Bytes of a server's stderr kept for error reports.
const STDERR_TAIL_BYTES: usize = 4096;
/// How long to wait for a failed server's last words on stderr.
const STDERR_DRAIN: Duration = Duration::from_secs(2);
/// How long a stopped server may take to exit by itself.
const EXIT_GRACE: Duration = Duration::from_millis(500);
/// How long to wait for `tools/list`, all pages.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pages of `tools/list` read at the most.
const MAX_LIST_PAGES: usize = 20;
/// Tools read from one server at the most (fewer are offered to the model).
pub const MAX_LISTED_TOOLS: usize = 1000;

/// Host variables a trusted server inherits; anything else (model keys, tokens) reaches
/// it only through its configured `env`.
pub const INHERITED_ENV: &[&str] =
    &["PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];

/// One tool as the server lists it.
#[derive(Debug, Clone)]
pub struct ListedTool {
    pub name: String,
    pub description: Option<String>,
    pub title: Option<String>,
    pub input_schema: serde_json::Map<String, Value>,
}

/// Why a call did not produce a result.
#[derive(Debug)]
pub enum CallError {
    /// No answer within the timeout; the call was cancelled.
    Timeout(Duration),
    /// The person interrupted; the call was cancelled.
    Cancelled,
    /// The server went away during the call.
    Gone(String),
    /// The server answered with a protocol error.
    Failed(String),
}

/// Notices `tools/list_changed`.
struct Handler {
    tools_changed: Arc<AtomicBool>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed.store(true, Ordering::Release);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(ClientCapabilities::default(), Implementation::new("rswe", env!("CARGO_PKG_VERSION")))
    }
}

/// The last bytes a server wrote to stderr.
#[derive(Default)]
struct StderrTail {
    bytes: Mutex<Vec<u8>>,
    done: tokio::sync::Notify,
    finished: AtomicBool,
}

impl StderrTail {
    fn push(&self, chunk: &[u8]) {
        let mut bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        bytes.extend_from_slice(chunk);
        if bytes.len() > STDERR_TAIL_BYTES {
            let cut = bytes.len() - STDERR_TAIL_BYTES;
            bytes.drain(..cut);
        }
    }

    fn text(&self) -> String {
        let bytes = self.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).trim().to_string()
    }

    /// Waits (bounded) until the stream has ended, so the tail holds the last words.
    async fn drained(&self) {
        let done = self.done.notified();
        if self.finished.load(Ordering::Acquire) {
            return;
        }
        let _ = tokio::time::timeout(STDERR_DRAIN, done).await;
    }

    fn read_from(self: Arc<Self>, server: String, mut stderr: Box<dyn AsyncRead + Send + Unpin>) {
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            loop {
                match stderr.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => {
                        tracing::debug!(server = %server, stderr = %String::from_utf8_lossy(&buffer[..read]).trim_end(), "MCP server output");
                        self.push(&buffer[..read]);
                    }
                }
            }
            self.finished.store(true, Ordering::Release);
            self.done.notify_waiters();
        });
    }
}

/// A started, initialised server.
pub struct Connection {
    name: String,
    service: Mutex<Option<RunningService<RoleClient, Handler>>>,
    peer: rmcp::Peer<RoleClient>,
    process: Option<Box<dyn ProcessHandle>>,
    stderr: Arc<StderrTail>,
    tools_changed: Arc<AtomicBool>,
    /// A call found the transport broken (an HTTP server that went away).
    broken: AtomicBool,
    /// `name version` as the server reported it.
    pub server_info: Option<String>,
}

impl Connection {
    /// Starts the server and initialises it, within `timeout`. A stdio server runs in
    /// `sandbox` unless it is trusted. Err says what went wrong, with the server's last
    /// stderr output when it has some.
    pub async fn start(config: &ServerConfig, sandbox: &dyn Sandbox, timeout: Duration) -> Result<Connection, String> {
        let tools_changed = Arc::new(AtomicBool::new(false));
        let handler = Handler { tools_changed: tools_changed.clone() };
        let stderr = Arc::new(StderrTail::default());
        let (service, process) = match &config.transport {
            Transport::Stdio { command, args, env, cwd } => {
                let process = if config.trusted {
                    spawn_on_host(command, args, env, cwd.as_deref())?
                } else {
                    let request = ProcessRequest {
                        program: command.clone(),
                        args: args.clone(),
                        env: env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                        cwd: cwd.clone(),
                    };
                    sandbox
                        .spawn_process(request)
                        .await
                        .map_err(|error| format!("could not start {command}: {error}"))?
                };
                let SandboxProcess { stdin, stdout, stderr: stderr_stream, handle } = process;
                stderr.clone().read_from(config.name.clone(), stderr_stream);
                let started = tokio::time::timeout(timeout, handler.serve((stdout, stdin))).await;
                match started {
                    Ok(Ok(service)) => (service, Some(handle)),
                    failed => {
                        // A server that closed the connection has usually exited, or is about to.
                        let exit = match failed {
                            Ok(Err(_)) => tokio::time::timeout(STDERR_DRAIN, handle.wait()).await.ok(),
                            _ => handle.exit_code(),
                        };
                        handle.kill().await;
                        stderr.drained().await;
                        let cause = match (failed, exit) {
                            (Ok(Err(_)), Some(code)) => {
                                format!("it exited with code {code} before completing the MCP handshake")
                            }
                            (Ok(Err(error)), None) => format!("it did not complete the MCP handshake ({error})"),
                            _ => format!("it did not answer the MCP handshake within {} s", timeout.as_secs()),
                        };
                        return Err(with_stderr(cause, &stderr.text()));
                    }
                }
            }
            Transport::Http { url, headers } => {
                let service = match tokio::time::timeout(timeout, serve_http(handler, url, headers)).await {
                    Ok(Ok(service)) => service,
                    Ok(Err(error)) => {
                        // Not a Streamable HTTP server: perhaps one of the older HTTP+SSE kind.
                        tracing::debug!(server = %config.name, %error, "Streamable HTTP failed; trying the legacy SSE transport");
                        let handler = Handler { tools_changed: tools_changed.clone() };
                        serve_legacy(handler, url, headers, timeout).await.map_err(|legacy| {
                            format!(
                                "{} did not answer as an MCP server: {error} (and over legacy SSE: {legacy})",
                                shown_url(url)
                            )
                        })?
                    }
                    Err(_) => {
                        return Err(format!("{url} did not answer the MCP handshake within {} s", timeout.as_secs()));
                    }
                };
                (service, None)
            }
            Transport::Sse { url, headers } => (serve_legacy(handler, url, headers, timeout).await?, None),
        };
        let server_info = service
            .peer()
            .peer_info()
            .and_then(|info| info.server_info.as_ref().map(|server| format!("{} {}", server.name, server.version)));
        let peer = service.peer().clone();
        tracing::info!(server = %config.name, info = server_info.as_deref().unwrap_or("?"), "MCP server started");
        Ok(Connection {
            name: config.name.clone(),
            service: Mutex::new(Some(service)),
            peer,
            process,
            stderr,
            tools_changed,
            broken: AtomicBool::new(false),
            server_info,
        })
    }

    /// Whether the server is still there to answer.
    pub fn is_alive(&self) -> bool {
        let exited = self.process.as_ref().is_some_and(|process| process.exit_code().is_some());
        !exited && !self.broken.load(Ordering::Acquire) && !self.peer.is_transport_closed()
    }

    /// Whether the server said its tool list changed since the last listing.
    pub fn tools_changed(&self) -> bool {
        self.tools_changed.load(Ordering::Acquire)
    }

    /// Every tool, page after page, within bounds: a server cannot make rswe page forever
    /// or hold an unbounded list. A failed listing leaves a pending change pending.
    pub async fn list_tools(&self) -> Result<Vec<ListedTool>, String> {
        let pending = self.tools_changed.swap(false, Ordering::AcqRel);
        let listed = tokio::time::timeout(LIST_TIMEOUT, self.list_pages()).await;
        let listed = match listed {
            Ok(result) => result,
            Err(_) => Err(format!("tools/list got no answer within {} s", LIST_TIMEOUT.as_secs())),
        };
        if listed.is_err() && pending {
            self.tools_changed.store(true, Ordering::Release);
        }
        listed
    }

    async fn list_pages(&self) -> Result<Vec<ListedTool>, String> {
        let mut tools = Vec::new();
        let mut cursors = std::collections::HashSet::new();
        let mut params = None;
        for _ in 0..MAX_LIST_PAGES {
            let page = self.peer.list_tools(params).await.map_err(|error| format!("tools/list failed: {error}"))?;
            for tool in page.tools {
                if tools.len() >= MAX_LISTED_TOOLS {
                    return Ok(tools);
                }
                tools.push(ListedTool {
                    name: tool.name.to_string(),
                    description: tool.description.map(|text| text.to_string()),
                    title: tool.title,
                    input_schema: tool.input_schema.as_ref().clone(),
                });
            }
            match page.next_cursor {
                Some(cursor) if cursors.insert(cursor.clone()) => {
                    params = Some(rmcp::model::PaginatedRequestParams::default().with_cursor(Some(cursor)));
                }
                // The last page, or a cursor seen before (a loop).
                _ => return Ok(tools),
            }
        }
        Ok(tools)
    }

    /// Calls a tool. The call is cancelled on the server (`notifications/cancelled`) when
    /// it times out or `cancel` fires. Ok is the `CallToolResult` as JSON.
    pub async fn call(
        &self,
        tool: &str,
        arguments: serde_json::Map<String, Value>,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Value, CallError> {
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let result = tokio::select! {
            result = tokio::time::timeout(timeout, self.peer.call_tool(params)) => result,
            () = cancel.cancelled() => return Err(CallError::Cancelled),
        };
        match result {
            Err(_) => Err(CallError::Timeout(timeout)),
            Ok(Ok(result)) => serde_json::to_value(result).map_err(|error| CallError::Failed(error.to_string())),
            Ok(Err(error))
                if !self.is_alive()
                    || matches!(error, rmcp::ServiceError::TransportClosed | rmcp::ServiceError::TransportSend(_)) =>
            {
                self.broken.store(true, Ordering::Release);
                let report = match &self.process {
                    Some(_) => self.death_report().await,
                    None => format!("the connection failed ({error})"),
                };
                Err(CallError::Gone(report))
            }
            Ok(Err(error)) => Err(CallError::Failed(error.to_string())),
        }
    }

    /// How the server ended: its exit code and last stderr output, when there are any.
    pub async fn death_report(&self) -> String {
        let exit = match &self.process {
            Some(process) => {
                let code = match process.exit_code() {
                    Some(code) => Some(code),
                    None => tokio::time::timeout(STDERR_DRAIN, process.wait()).await.ok(),
                };
                self.stderr.drained().await;
                code.map(|code| format!("it exited with code {code}"))
            }
            None => None,
        };
        let cause = exit.unwrap_or_else(|| "the connection closed".to_string());
        with_stderr(cause, &self.stderr.text())
    }

    /// Ends the session with the server and stops its process.
    pub async fn shutdown(&self) {
        let service = self.service.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(service) = service
            && tokio::time::timeout(Duration::from_secs(5), service.cancel()).await.is_err()
        {
            tracing::warn!(server = %self.name, "the MCP client did not stop in time");
        }
        if let Some(process) = &self.process {
            // Its stdin is closed: a moment to exit on its own, then the signal.
            let _ = tokio::time::timeout(EXIT_GRACE, process.wait()).await;
            process.kill().await;
        }
        tracing::debug!(server = %self.name, "MCP server stopped");
    }
}

fn with_stderr(cause: String, stderr: &str) -> String {
    if stderr.is_empty() { cause } else { format!("{cause}. Its last output:\n{stderr}") }
}

async fn serve_http(
    handler: Handler,
    url: &str,
    headers: &BTreeMap<String, String>,
) -> Result<RunningService<RoleClient, Handler>, String> {
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let mut custom = std::collections::HashMap::new();
    for (name, value) in headers {
        let name = reqwest::header::HeaderName::try_from(name.as_str())
            .map_err(|error| format!("header {name:?}: {error}"))?;
        let value = reqwest::header::HeaderValue::try_from(value.as_str())
            .map_err(|error| format!("header {name}: {error}"))?;
        custom.insert(name, value);
    }
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_string()).custom_headers(custom);
    let transport = StreamableHttpClientTransport::from_config(config);
    handler.serve(transport).await.map_err(|error| error.to_string())
}

async fn serve_legacy(
    handler: Handler,
    url: &str,
    headers: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<RunningService<RoleClient, Handler>, String> {
    let transport = legacy_sse::connect(url, headers, timeout).await?;
    match tokio::time::timeout(timeout, handler.serve(transport)).await {
        Ok(result) => result.map_err(|error| error.to_string()),
        Err(_) => Err(format!("{} did not answer the MCP handshake within {} s", shown_url(url), timeout.as_secs())),
    }
}

/// Starts a trusted server beside rswe: its own process group, the inherited environment
/// filtered to [`INHERITED_ENV`], its configured `env` on top.
fn spawn_on_host(
    command: &str,
    args: &[String],
    env: &BTreeMap<String, String>,
    cwd: Option<&std::path::Path>,
) -> Result<SandboxProcess, String> {
    let mut process = tokio::process::Command::new(command);
    process.args(args).env_clear();
    for name in INHERITED_ENV {
        if let Some(value) = std::env::var_os(name) {
            process.env(name, value);
        }
    }
    process.envs(env);
    if let Some(cwd) = cwd {
        process.current_dir(cwd);
    }
    process.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).kill_on_drop(true);
    let mut child = process.spawn().map_err(|error| format!("could not start {command}: {error}"))?;
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(format!("could not connect to {command}'s standard streams"));
    };
    Ok(SandboxProcess {
        stdin: Box::new(stdin),
        stdout: Box::new(stdout),
        stderr: Box::new(stderr),
        handle: Box::new(crate::host::HostProcess::watch(child)),
    })
}
