//! The config file: one TOML file named by `--config` or `RSWE_CONFIG`, else
//! `$XDG_CONFIG_HOME/rswe/rswe.toml` when it exists. Environment variables override it.

use anyhow::{Context, Result, bail};
use rswe_llm::{Catalog, CatalogEntry, ProvidersConfig};
use rswe_sandbox::{LocalSandbox, LocalSandboxConfig, SandboxMode};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub providers: ProvidersConfig,
    /// Catalog entries that add models or override the built-in ones.
    pub models: Vec<CatalogEntry>,
    pub agent: AgentSection,
    pub sandbox: SandboxSection,
    pub git: GitSection,
    pub server: ServerSection,
    /// Tool servers: see "Tools from MCP servers" in the README.
    pub mcp: McpSection,
    /// The Slack channel: see docs/slack.md.
    pub slack: SlackSection,
    /// How the context is managed: see docs/context-economy.md.
    pub context: rswe_agent::context::EconomySettings,
    /// Where sessions and the database live (default: RSWE_DATA_DIR, else
    /// $XDG_DATA_HOME/rswe, else ~/.local/share/rswe).
    pub data_dir: Option<PathBuf>,
    /// The file this configuration came from, if any.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// `[agent]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSection {
    /// The model sessions use unless told otherwise.
    pub model: String,
    pub max_steps: Option<u32>,
    pub max_cost_usd: Option<f64>,
}

impl Default for AgentSection {
    fn default() -> Self {
        AgentSection { model: "anthropic/claude-sonnet-4-5".into(), max_steps: Some(200), max_cost_usd: None }
    }
}

/// `[sandbox]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSection {
    /// "auto" (bubblewrap when it works here), "bubblewrap", or "none".
    pub mode: String,
    /// Whether commands may use the network.
    pub network: bool,
    /// More host paths commands may read (the home directory is hidden otherwise).
    pub expose: Vec<PathBuf>,
}

impl Default for SandboxSection {
    fn default() -> Self {
        SandboxSection { mode: "auto".into(), network: true, expose: Vec::new() }
    }
}

/// `[server]`: how `rswe serve` listens and runs sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// The address to listen on. Keep the default (loopback) unless a reverse proxy
    /// with TLS sits in front.
    pub listen: String,
    /// The address people use to reach the server (links, cookie `Secure` flag).
    /// Default: http://<listen>.
    pub public_url: Option<String>,
    /// Sessions working at once; more wait their turn.
    pub max_working: usize,
    /// Seconds a session rests before its sandbox is released (made again, workspace
    /// intact, when spoken to).
    pub idle_release_secs: u64,
    /// Whether /metrics answers without a key.
    pub metrics_public: bool,
    /// The largest request body, in megabytes (attachments travel base64 in JSON).
    pub max_body_mb: usize,
    /// Seconds working sessions get to finish a step on shutdown; the rest resume on
    /// the next start.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "127.0.0.1:8080".into(),
            public_url: None,
            max_working: 4,
            idle_release_secs: 900,
            metrics_public: true,
            max_body_mb: 25,
            shutdown_grace_secs: 10,
        }
    }
}

/// `[mcp]`: the MCP servers whose tools sessions get.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpSection {
    /// An `mcpServers` JSON file (the format of Claude Desktop, Claude Code's
    /// `.mcp.json` and Cursor); relative to this config file.
    pub config: Option<PathBuf>,
    /// Servers written inline, `[mcp.servers.<name>]`, with the same fields; they win
    /// over the file's servers of the same name.
    pub servers: toml::Table,
    /// Whether a repository's own `.mcp.json` is used (its stdio servers, in the
    /// sandbox). Off: a repository must not start processes on its own.
    pub repository_config: bool,
    /// Seconds a server has to start and answer the MCP handshake.
    pub startup_timeout_secs: u64,
    /// Seconds one tool call may take, unless a server's `timeout` says otherwise.
    pub tool_timeout_secs: u64,
}

impl Default for McpSection {
    fn default() -> Self {
        McpSection {
            config: None,
            servers: toml::Table::new(),
            repository_config: false,
            startup_timeout_secs: 30,
            tool_timeout_secs: 120,
        }
    }
}

/// `[slack]`: the Slack app (environment variables win over the file).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackSection {
    /// SLACK_BOT_TOKEN (`xoxb-…`).
    pub bot_token: Option<String>,
    /// SLACK_SIGNING_SECRET: takes events at `POST /slack/events`.
    pub signing_secret: Option<String>,
    /// SLACK_APP_TOKEN (`xapp-…`): takes events over Socket Mode, no public URL needed.
    pub app_token: Option<String>,
    /// SLACK_API_URL, for a proxy.
    pub api_url: Option<String>,
    /// ADMIN_USER_ID_LIST: Slack user ids who may use rswe and approve others.
    pub admins: Vec<String>,
    /// The repository sessions started from Slack work on.
    pub repository: Option<String>,
    /// The largest attachment fetched from Slack, in megabytes.
    pub max_file_mb: usize,
}

impl std::fmt::Debug for SlackSection {
    /// Without the tokens and the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackSection")
            .field("bot_token", &self.bot_token.as_ref().map(|_| "…"))
            .field("signing_secret", &self.signing_secret.as_ref().map(|_| "…"))
            .field("app_token", &self.app_token.as_ref().map(|_| "…"))
            .field("api_url", &self.api_url)
            .field("admins", &self.admins)
            .field("repository", &self.repository)
            .finish()
    }
}

impl Default for SlackSection {
    fn default() -> Self {
        SlackSection {
            bot_token: None,
            signing_secret: None,
            app_token: None,
            api_url: None,
            admins: Vec::new(),
            repository: None,
            max_file_mb: 20,
        }
    }
}

/// `[git]`: the identity of the agent's commits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GitSection {
    pub author_name: String,
    pub author_email: String,
}

impl Default for GitSection {
    fn default() -> Self {
        GitSection { author_name: "rswe".into(), author_email: "rswe@localhost".into() }
    }
}

impl Config {
    /// Loads the file named explicitly, or the default one if present, or the defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config> {
        let path = match explicit {
            Some(path) => {
                if !path.exists() {
                    bail!("config file {} does not exist", path.display());
                }
                Some(path.to_path_buf())
            }
            None => default_path().filter(|path| path.exists()),
        };
        let mut config = match &path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<Config>(&text).with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => Config::default(),
        };
        config.providers = config.providers.with_process_env();
        if let Ok(model) = std::env::var("RSWE_MODEL")
            && !model.trim().is_empty()
        {
            config.agent.model = model;
        }
        config.path = path;
        Ok(config)
    }

    /// Where sessions and the database live. `RSWE_DATA_DIR` wins over the file.
    pub fn data_dir(&self) -> PathBuf {
        match (std::env::var_os("RSWE_DATA_DIR"), &self.data_dir) {
            (Some(dir), _) if !dir.is_empty() => PathBuf::from(dir),
            (_, Some(dir)) => dir.clone(),
            _ => rswe_store::data_dir(),
        }
    }

    /// The local sandbox for a session: its directory under the data directory, the data
    /// directory and the config file hidden, toolchains under the home directory visible
    /// read-only.
    pub fn sandbox(&self, session_dir: &Path, workspace: &Path, data_dir: &Path) -> Result<LocalSandbox> {
        let mode = match self.sandbox.mode.as_str() {
            "auto" => SandboxMode::Auto,
            "bubblewrap" => SandboxMode::Bubblewrap,
            "none" => SandboxMode::None,
            other => bail!("sandbox.mode = \"{other}\" is not one of \"auto\", \"bubblewrap\", \"none\""),
        };
        let mut config = LocalSandboxConfig::new(session_dir);
        config.workspace = Some(workspace.to_path_buf());
        config.mode = mode;
        config.network = self.sandbox.network;
        config.hidden_paths.push(data_dir.to_path_buf());
        if let Some(path) = &self.path {
            config.hidden_paths.push(path.clone());
        }
        // The MCP server file holds tokens too.
        if let Some(file) = self.mcp_file() {
            config.hidden_paths.push(file);
        }
        config.readonly_paths = self.sandbox.expose.clone();
        if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
            for toolchain in [".rustup", ".cargo/bin", ".cargo/registry", ".cargo/git", ".pyenv", ".nvm", ".local/bin"]
            {
                let path = home.join(toolchain);
                if path.exists() && !config.readonly_paths.contains(&path) {
                    config.readonly_paths.push(path);
                }
            }
        }
        LocalSandbox::new(config).with_context(|| format!("cannot create the sandbox in {}", session_dir.display()))
    }

    /// The MCP servers of `[mcp]`: the file named by `config`, then the inline ones.
    /// `${VAR}`s are expanded from the environment now, so a missing one is found at start.
    pub fn mcp_servers(&self) -> Result<rswe_mcp::McpConfig> {
        let env = |name: &str| std::env::var(name).ok();
        let mut servers = match self.mcp_file() {
            Some(file) => {
                rswe_mcp::McpConfig::from_file(&file, &env).with_context(|| format!("in {}", file.display()))?
            }
            None => rswe_mcp::McpConfig::default(),
        };
        let inline = rswe_mcp::McpConfig::from_toml(&self.mcp.servers, &env).context("in [mcp.servers]")?;
        servers.servers.extend(inline.servers);
        Ok(servers)
    }

    /// The `mcpServers` file of `[mcp] config`, relative to this config file.
    fn mcp_file(&self) -> Option<PathBuf> {
        let file = self.mcp.config.as_ref()?;
        Some(match (&self.path, file.is_relative()) {
            (Some(config), true) => config.parent().unwrap_or(Path::new(".")).join(file),
            _ => file.clone(),
        })
    }

    /// The timeouts of `[mcp]`.
    pub fn mcp_settings(&self) -> Result<rswe_mcp::McpSettings> {
        if self.mcp.startup_timeout_secs == 0 || self.mcp.tool_timeout_secs == 0 {
            bail!("mcp.startup_timeout_secs and mcp.tool_timeout_secs must be at least 1");
        }
        Ok(rswe_mcp::McpSettings {
            startup_timeout: std::time::Duration::from_secs(self.mcp.startup_timeout_secs),
            call_timeout: std::time::Duration::from_secs(self.mcp.tool_timeout_secs),
        })
    }

    /// The Slack channel's settings, `None` when Slack is not configured (no bot token).
    pub fn slack_settings(&self) -> Result<Option<rswe_server::slack::SlackSettings>> {
        let env = |name: &str| std::env::var(name).ok().map(|value| value.trim().to_string()).filter(|v| !v.is_empty());
        let slack = &self.slack;
        let bot_token = env("SLACK_BOT_TOKEN");
        let from_file =
            |value: &Option<String>| value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        let bot_token = bot_token.or_else(|| from_file(&slack.bot_token));
        let signing_secret = env("SLACK_SIGNING_SECRET").or_else(|| from_file(&slack.signing_secret));
        let app_token = env("SLACK_APP_TOKEN").or_else(|| from_file(&slack.app_token));
        let Some(bot_token) = bot_token else {
            if signing_secret.is_some() || app_token.is_some() {
                bail!("Slack: SLACK_BOT_TOKEN (the app's xoxb- bot token) is not set; see docs/slack.md");
            }
            return Ok(None);
        };
        if signing_secret.is_none() && app_token.is_none() {
            bail!(
                "Slack: set SLACK_SIGNING_SECRET (events at /slack/events) or SLACK_APP_TOKEN (Socket Mode, no public \
                 URL needed) beside SLACK_BOT_TOKEN; see docs/slack.md"
            );
        }
        let admins = match env("ADMIN_USER_ID_LIST") {
            Some(list) => list.split([',', ' ', '\t']).filter(|id| !id.is_empty()).map(str::to_string).collect(),
            None => slack.admins.iter().map(|id| id.trim().to_string()).filter(|id| !id.is_empty()).collect(),
        };
        Ok(Some(rswe_server::slack::SlackSettings {
            api_url: env("SLACK_API_URL")
                .or_else(|| slack.api_url.clone())
                .unwrap_or_else(|| rswe_slack::api::DEFAULT_API_URL.to_string()),
            bot_token,
            signing_secret,
            app_token,
            admins,
            repository: slack.repository.clone(),
            max_file_bytes: slack.max_file_mb.max(1) * 1024 * 1024,
        }))
    }

    /// The built-in catalog with this file's `[[models]]` applied.
    pub fn catalog(&self) -> Result<Catalog> {
        let mut catalog = Catalog::built_in();
        catalog.extend(self.models.iter().cloned()).context("invalid [[models]] entry in the config file")?;
        Ok(catalog)
    }
}

fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(base.join("rswe").join("rswe.toml"))
}
