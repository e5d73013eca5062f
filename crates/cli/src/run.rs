//! `rswe run`: one task in the terminal, on the same engine and log as every channel.

use crate::config::Config;
use crate::git;
use crate::render::{Mode, Renderer};
use anyhow::{Context, Result, bail};
use rswe_agent::{Agent, AgentConfig, LiveEvent, SessionLog, TurnEnd};
use rswe_llm::Providers;
use rswe_mcp::McpSession;
use rswe_protocol::{ContentBlock, EventKind, SessionId, Usage};
use rswe_sandbox::Sandbox;
use rswe_store::{NewSession, SessionUpdate, Store};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Exit statuses of `rswe run` (documented in the README).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const AGENT_FAILED: u8 = 3;
    pub const BUDGET: u8 = 4;
    pub const INTERRUPTED: u8 = 130;
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// What to do. Optional with --resume (then it is a new message to the session).
    pub task: Option<String>,
    /// A repository to work on: a local path (cloned into the session; new branches come
    /// back as rswe/<session>/<branch>) or a URL (cloned).
    #[arg(long)]
    pub repo: Option<String>,
    /// The model, as provider/model-id (default: agent.model in the config, else
    /// anthropic/claude-sonnet-4-5).
    #[arg(long, env = "RSWE_MODEL")]
    pub model: Option<String>,
    /// Print the session's events as JSON lines on stdout instead of the final answer.
    #[arg(long)]
    pub json: bool,
    /// Continue a session: its id, as the summary of a run prints it.
    #[arg(long, value_name = "SESSION")]
    pub resume: Option<String>,
    /// Stop after this many model requests in the session.
    #[arg(long)]
    pub max_steps: Option<u32>,
    /// Stop once the session has cost this many dollars.
    #[arg(long, value_name = "USD")]
    pub max_cost: Option<f64>,
    /// Work directly in the repository given by --repo (a local path) instead of a clone.
    #[arg(long, requires = "repo")]
    pub in_place: bool,
}

/// What `rswe run` remembers about a session's workspace, in the session's metadata.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct WorkspaceInfo {
    workspace: PathBuf,
    /// The person's repository to fetch new branches back into.
    source_repo: Option<PathBuf>,
    in_place: bool,
    /// The branches when the session started.
    initial_heads: BTreeMap<String, String>,
}

/// The GitHub tools of a terminal session; an issue or pull request named in the task is the
/// one it works on.
fn github_session(
    settings: rswe_github::GitHubSettings,
    session_id: &SessionId,
    session_dir: &std::path::Path,
    task: &str,
) -> Result<Arc<rswe_github::tools::GitHubSession>> {
    let auth = rswe_github::GitHubAuth::new(&settings.api_url, settings.credentials.clone())
        .context("GitHub configuration")?;
    let origin = rswe_github::tools::origin_in(task, &settings.api_url);
    Ok(rswe_github::tools::GitHubSession::new(
        auth,
        Arc::new(settings),
        rswe_github::tools::SessionContext {
            session_id: session_id.to_string(),
            state_dir: session_dir.join("github"),
            origin,
            session_url: None,
            only_origin_repository: false,
        },
    ))
}

pub async fn run(config: &Config, args: RunArgs) -> Result<u8> {
    if args.resume.is_none() && args.task.as_deref().is_none_or(|t| t.trim().is_empty()) {
        eprintln!("error: say what to do: rswe run [--repo PATH] \"fix the failing test\" (or --resume SESSION)");
        return Ok(exit::USAGE);
    }
    let data_dir = config.data_dir();
    let store = Store::open(data_dir.join("rswe.db")).await?;
    let started = Instant::now();

    // Everything that can be checked is checked before anything is written.
    let providers = Providers::new(config.providers.clone(), config.catalog()?)?;
    let mcp_servers = config.mcp_servers()?;
    let mcp_settings = config.mcp_settings()?;
    let resumed = match &args.resume {
        Some(id) => Some(resume_session(&store, id).await?),
        None => None,
    };
    let model_name = match (&args.model, &resumed) {
        (Some(model), _) => model.clone(),
        (None, Some((id, _))) => store.session(id).await?.context("the session vanished from the database")?.model,
        (None, None) => config.agent.model.clone(),
    };
    let model = match providers.model(&model_name).await {
        Ok(model) => model,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(exit::USAGE);
        }
    };
    let (session_id, info) = match resumed {
        Some(resumed) => resumed,
        None => new_session(&store, &data_dir, &args, &model_name).await?,
    };
    if let Some(task) = args.task.as_deref().filter(|t| !t.trim().is_empty()) {
        store
            .append(&session_id, EventKind::UserMessage { content: vec![ContentBlock::text(task)], author: None })
            .await?;
    }

    let session_dir = data_dir.join("sessions").join(session_id.as_str());
    let sandbox = config.sandbox(&session_dir, &info.workspace, &data_dir)?;
    let sandbox: Arc<dyn Sandbox> = Arc::new(sandbox);
    git::write_identity(sandbox.home(), &config.git.author_name, &config.git.author_email)?;

    let mode = if args.json {
        Mode::Json
    } else if std::io::stderr().is_terminal() {
        Mode::Terminal
    } else {
        Mode::Plain
    };
    let renderer = Arc::new(Renderer::new(mode));
    let live_renderer = renderer.clone();
    let live: rswe_agent::LiveSink = Arc::new(move |event: LiveEvent| live_renderer.handle(&event));

    let log: Arc<dyn SessionLog> = Arc::new(store.clone());
    let agent_config = AgentConfig {
        max_steps: args.max_steps.or(config.agent.max_steps),
        max_cost_usd: args.max_cost.or(config.agent.max_cost_usd),
        network: config.sandbox.network,
        context: config.context.clone(),
        ..AgentConfig::default()
    };
    let mcp =
        McpSession::for_workspace(&mcp_servers, sandbox.clone(), mcp_settings, config.mcp.repository_config).await;
    let mut tools = rswe_tools::builtin_tools();
    let mut source: Arc<dyn rswe_tools::ToolSource> = Arc::new(mcp.clone());
    if let Some(github) = config.github_settings()? {
        let task = args.task.as_deref().unwrap_or_default();
        let github = github_session(github, &session_id, &session_dir, task)?;
        for tool in github.tools() {
            tools.register(tool);
        }
        let filter: rswe_tools::OutputFilter = Arc::new(move |text: &str| github.redact(text));
        tools.filter_output(filter.clone());
        source = Arc::new(rswe_tools::FilteredSource::new(source, filter));
    }
    let agent = Agent::new(session_id.clone(), model, tools, sandbox.clone(), log, live, agent_config)?
        .with_tool_source(source);

    let interrupt = CancellationToken::new();
    let handler = spawn_interrupt_handler(store.clone(), session_id.clone(), interrupt.clone());
    let end = agent.run(interrupt).await;
    // A Ctrl-C from now on is no interrupt of the agent.
    handler.abort();
    mcp.shutdown().await;
    sandbox.shutdown().await;
    renderer.finish();
    let end = end?;

    let branches = bring_back_branches(&info, &session_id);
    print_summary(&store, &session_id, &branches, started).await?;
    let code = match &end {
        TurnEnd::Finished { text } => {
            if !args.json {
                print_stdout(text);
            }
            exit::OK
        }
        TurnEnd::Idle => {
            eprintln!(
                "The session has nothing waiting for an answer; give it a task: rswe run --resume {session_id} \"…\""
            );
            exit::OK
        }
        TurnEnd::Interrupted => {
            eprintln!("Interrupted. Continue with: rswe run --resume {session_id} \"…\"");
            exit::INTERRUPTED
        }
        TurnEnd::BudgetReached { reason } => {
            eprintln!("Stopped: {reason}");
            exit::BUDGET
        }
        TurnEnd::Failed { message, .. } => {
            eprintln!("Failed: {message}");
            exit::AGENT_FAILED
        }
    };
    store.close().await;
    Ok(code)
}

async fn new_session(
    store: &Store,
    data_dir: &Path,
    args: &RunArgs,
    model: &str,
) -> Result<(SessionId, WorkspaceInfo)> {
    let model = model.to_string();
    let session = store
        .create_session(NewSession {
            id: None,
            title: None,
            repository: args.repo.clone(),
            model,
            channel: "cli".into(),
        })
        .await?;
    let session_dir = data_dir.join("sessions").join(session.id.as_str());
    match prepare_workspace(&session_dir, args) {
        Ok(info) => {
            store
                .update_session(
                    &session.id,
                    SessionUpdate { metadata: Some(json!({ "cli": info })), ..Default::default() },
                )
                .await?;
            Ok((session.id, info))
        }
        Err(error) => {
            // A session that never got its workspace cannot be resumed: leave nothing behind.
            let _ = store.delete_session(&session.id).await;
            let _ = std::fs::remove_dir_all(&session_dir);
            Err(error)
        }
    }
}

/// The session's workspace: a clone of the repository, the repository itself with
/// --in-place, or an empty directory.
fn prepare_workspace(session_dir: &Path, args: &RunArgs) -> Result<WorkspaceInfo> {
    let mut info = WorkspaceInfo {
        workspace: session_dir.join("workspace"),
        source_repo: None,
        in_place: args.in_place,
        initial_heads: BTreeMap::new(),
    };
    std::fs::create_dir_all(session_dir).with_context(|| format!("cannot create {}", session_dir.display()))?;
    match args.repo.as_deref() {
        Some(repo) if Path::new(repo).exists() => {
            let path = std::fs::canonicalize(repo).with_context(|| format!("cannot open {repo}"))?;
            if !git::is_work_tree(&path) {
                bail!("{repo} is not a git repository: rswe works on a git checkout (git init it first)");
            }
            let top = git::top_level(&path)?;
            if args.in_place {
                info.workspace = top.clone();
            } else {
                git::clone(top.to_str().context("the repository path is not UTF-8")?, &info.workspace)?;
                info.source_repo = Some(top);
            }
        }
        Some(repo) if args.in_place => bail!("--in-place needs a local repository path; {repo} does not exist"),
        Some(url) => git::clone(url, &info.workspace).with_context(|| format!("cannot clone {url}"))?,
        None => std::fs::create_dir_all(&info.workspace)?,
    }
    if git::is_work_tree(&info.workspace) {
        info.initial_heads = git::heads(&info.workspace)?;
    }
    Ok(info)
}

async fn resume_session(store: &Store, id: &str) -> Result<(SessionId, WorkspaceInfo)> {
    let Some(session_id) = SessionId::parse(id) else { bail!("`{id}` is not a session id") };
    let Some(session) = store.session(&session_id).await? else {
        bail!("no session {id} in this data directory (RSWE_DATA_DIR); `rswe run` prints the id at the end of each run")
    };
    let info: WorkspaceInfo = serde_json::from_value(session.metadata["cli"].clone()).with_context(|| {
        format!("session {id} was not started by `rswe run`, so it has no local workspace to resume")
    })?;
    if !info.workspace.exists() {
        bail!("the workspace of session {id} is gone ({})", info.workspace.display());
    }
    Ok((session_id, info))
}

fn spawn_interrupt_handler(
    store: Store,
    session: SessionId,
    interrupt: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!("\nInterrupting at the next safe point… (Ctrl-C again to abort)");
        // The interrupt is persisted first, so a resume knows of it.
        if let Err(error) = store.append(&session, EventKind::Interrupted { by: Some("terminal".into()) }).await {
            tracing::warn!(%error, "could not record the interrupt");
        }
        interrupt.cancel();
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("Aborted.");
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
    })
}

/// Fetches the branches the agent made into the person's repository.
fn bring_back_branches(info: &WorkspaceInfo, session: &SessionId) -> Vec<String> {
    if !git::is_work_tree(&info.workspace) {
        return Vec::new();
    }
    let changed = match git::changed_branches(&info.workspace, &info.initial_heads) {
        Ok(changed) => changed,
        Err(error) => {
            eprintln!("warning: cannot list the workspace's branches: {error:#}");
            return Vec::new();
        }
    };
    let mut lines = Vec::new();
    for branch in changed {
        let commits = match branch.new_commits {
            1 => "1 new commit".to_string(),
            n => format!("{n} new commits"),
        };
        match (&info.source_repo, info.in_place) {
            (Some(repo), false) => match git::fetch_back(repo, &info.workspace, session.as_str(), &branch.name) {
                Ok(target) => lines.push(format!("{target} ({commits}) in {}", repo.display())),
                Err(error) => eprintln!("warning: cannot fetch branch {} back: {error:#}", branch.name),
            },
            _ => lines.push(format!("{} ({commits}) in {}", branch.name, info.workspace.display())),
        }
    }
    lines
}

async fn print_summary(store: &Store, session: &SessionId, branches: &[String], started: Instant) -> Result<()> {
    let events = store.events(session, 0, u32::MAX).await?;
    let mut usage = Usage::default();
    let mut steps = 0;
    for event in &events {
        if let EventKind::AssistantMessage { usage: step, .. } = &event.kind {
            usage += *step;
            steps += 1;
        }
    }
    let row = store.session(session).await?;
    let cost = match row {
        Some(row) if row.cost_unknown => {
            format!("${:.4} + unknown (a model has no price in the catalog)", row.cost_usd)
        }
        Some(row) => format!("${:.4}", row.cost_usd),
        None => "unknown".into(),
    };
    eprintln!();
    eprintln!(
        "{steps} steps · tokens: {} input, {} cache read, {} cache write, {} output · {cost} · {:.1}s",
        usage.input_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.output_tokens,
        started.elapsed().as_secs_f64()
    );
    for branch in branches {
        eprintln!("branch {branch}");
    }
    eprintln!("session {session} (continue with: rswe run --resume {session} \"…\")");
    Ok(())
}

fn print_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end());
}
