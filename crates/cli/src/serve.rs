//! `rswe serve`: the long-lived service with the REST API and the web UI.

use crate::config::Config;
use crate::git;
use anyhow::{Context, Result};
use rswe_llm::{Provider, ProviderStatus, Providers};
use rswe_sandbox::Sandbox;
use rswe_server::{RunningServer, SandboxFactory, ServerParts, ServerSettings, ServiceConfig};
use rswe_store::Store;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The address to listen on (default: server.listen in the config, else 127.0.0.1:8080).
    #[arg(long, env = "RSWE_LISTEN")]
    pub listen: Option<String>,
}

pub async fn serve(config: Config, args: ServeArgs) -> Result<u8> {
    let listen = args.listen.unwrap_or_else(|| config.server.listen.clone());
    let data_dir = config.data_dir();
    let store = Store::open(data_dir.join("rswe.db")).await?;
    let catalog = config.catalog()?;
    let models = offered_models(&config, &catalog);
    let providers = Providers::new(config.providers.clone(), catalog)?;
    let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| {
        format!("cannot listen on {listen}: is another server using it? Choose another with --listen 127.0.0.1:PORT")
    })?;
    let addr = listener.local_addr()?;
    let public_url =
        config.server.public_url.clone().unwrap_or_else(|| format!("http://{addr}")).trim_end_matches('/').to_string();
    let settings = ServerSettings {
        public_url: public_url.clone(),
        metrics_public: config.server.metrics_public,
        max_body_bytes: config.server.max_body_mb.max(1) * 1024 * 1024,
        default_model: config.agent.model.clone(),
        models,
    };
    let github = config.github_settings()?;
    let github_service = match &github {
        Some(github) => {
            Some(rswe_server::GitHubServiceConfig::new(github.clone(), &public_url).context("GitHub configuration")?)
        }
        None => None,
    };
    let github_service_on = github_service.is_some();
    let service = ServiceConfig {
        data_dir: data_dir.clone(),
        max_working: config.server.max_working.max(1),
        idle_release: Duration::from_secs(config.server.idle_release_secs),
        default_model: config.agent.model.clone(),
        agent: rswe_agent::AgentConfig {
            max_steps: config.agent.max_steps,
            max_cost_usd: config.agent.max_cost_usd,
            network: config.sandbox.network,
            context: config.context.clone(),
            ..Default::default()
        },
        sandbox: sandbox_factory(&config, &data_dir)?,
        clone_timeout: Duration::from_secs(600),
        stop_timeout: Duration::from_secs(30),
        mcp: rswe_server::McpServiceConfig {
            servers: config.mcp_servers()?,
            settings: config.mcp_settings()?,
            repository_config: config.mcp.repository_config,
        },
        github: github_service,
    };
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    let server = RunningServer::start(
        listener,
        ServerParts { store, providers, service, settings, slack: config.slack_settings()?, github },
    )
    .await?;
    eprintln!("rswe is serving on http://{addr} (data in {})", data_dir.display());
    if let Some(slack) = &server.state.slack {
        eprintln!("{}", slack.describe());
        if config.slack_settings()?.is_some_and(|slack| slack.admins.is_empty()) {
            eprintln!(
                "warning: Slack: ADMIN_USER_ID_LIST is empty, so everyone in the workspace can use the agent (see \
                 docs/slack.md)"
            );
        }
    }
    if let Some(github) = &server.state.github {
        eprintln!("{}", github.describe());
    }
    if github_service_on && !isolated(&config) {
        eprintln!(
            "warning: GitHub is configured but commands run without bubblewrap: the agent's commands could read \
             rswe's environment and files, GitHub credentials included. Install bubblewrap (see rswe doctor)"
        );
    }
    if server.resumed > 0 {
        eprintln!("resumed {} session(s) that were working", server.resumed);
    }
    warn_if_default_model_unusable(&config);
    announce_sign_in(&server, &public_url).await?;
    if !addr.ip().is_loopback() && !public_url.starts_with("https://") {
        eprintln!(
            "warning: listening on {addr} without TLS: put a reverse proxy with TLS in front and set \
             server.public_url to its https:// address (see the README's deployment notes)"
        );
    }
    wait_for_signal().await;
    eprintln!("shutting down: sessions that are working will resume on the next start");
    server.shutdown(grace).await;
    Ok(0)
}

/// Whether sessions' commands run isolated (under bubblewrap).
fn isolated(config: &Config) -> bool {
    config.sandbox.mode != "none" && rswe_sandbox::LocalSandbox::detect_bubblewrap().is_ok()
}

/// Says at once when new sessions would fail for want of a model provider.
fn warn_if_default_model_unusable(config: &Config) {
    let model = &config.agent.model;
    let problem = match config.catalog().and_then(|catalog| Ok(catalog.resolve(model)?)) {
        Ok(info) => match config.providers.status(info.provider) {
            ProviderStatus::Ready => return,
            ProviderStatus::Missing(hint) => hint,
        },
        Err(error) => error.to_string(),
    };
    eprintln!(
        "warning: new sessions use {model}, which cannot be used: {problem} (set agent.model or the provider's \
         key, then restart; `rswe doctor` checks)"
    );
}

/// With no API key yet, prints a one-time sign-in link — to a terminal only, never to a
/// log.
async fn announce_sign_in(server: &RunningServer, public_url: &str) -> Result<()> {
    if !std::io::stderr().is_terminal() {
        if server.state.store.count_api_keys().await? == 0 {
            eprintln!("no API key exists yet: create one with `rswe keys create admin` and sign in with it");
        }
        return Ok(());
    }
    if let Some(token) = server.state.auth.first_start_token().await? {
        eprintln!();
        eprintln!("  Sign in (one time, valid for an hour): {public_url}/login?token={token}");
        eprintln!("  Then create an API key on the Keys page, or with `rswe keys create NAME`.");
        eprintln!();
    }
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The models the web UI offers: the default, then every catalog model whose provider
/// is configured.
fn offered_models(config: &Config, catalog: &rswe_llm::Catalog) -> Vec<String> {
    let mut models = vec![config.agent.model.clone()];
    let ready: Vec<Provider> = Provider::ALL
        .into_iter()
        .filter(|provider| matches!(config.providers.status(*provider), ProviderStatus::Ready))
        .collect();
    for entry in catalog.entries() {
        for id in &entry.ids {
            if let Ok(info) = catalog.resolve(id)
                && ready.contains(&info.provider)
                && !models.contains(&info.id)
            {
                models.push(info.id);
            }
        }
    }
    models
}

/// Each session's sandbox, with the agent's git identity in its home.
fn sandbox_factory(config: &Config, data_dir: &std::path::Path) -> Result<SandboxFactory> {
    // Checked once now, so a wrong mode is a start-up error rather than a failed session.
    let probe = tempfile::tempdir()?;
    config.sandbox(probe.path(), probe.path(), data_dir)?;
    let config = Arc::new(config.clone());
    let data_dir = data_dir.to_path_buf();
    Ok(Arc::new(move |_id, session_dir, workspace| {
        let sandbox = config.sandbox(session_dir, workspace, &data_dir).map_err(|e| format!("{e:#}"))?;
        git::write_identity(sandbox.home(), &config.git.author_name, &config.git.author_email)
            .map_err(|e| format!("{e:#}"))?;
        Ok(Arc::new(sandbox) as Arc<dyn Sandbox>)
    }))
}
